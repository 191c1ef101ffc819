"""Call flows: YAML file -> typed model -> load-time validation -> runner over any Channel."""
from ivr.flow.loader import FlowError, load_flow
from ivr.flow.model import Flow, Node

__all__ = ["Flow", "Node", "FlowError", "load_flow"]
