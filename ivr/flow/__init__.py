"""Call flows: YAML file -> typed model -> load-time validation -> runner over any Channel."""
from ivr.flow.loader import FlowError, Problem, check_flow, load_flow
from ivr.flow.model import Flow, Node
from ivr.flow.registry import FlowRegistry

__all__ = ["Flow", "Node", "FlowError", "Problem", "check_flow", "load_flow", "FlowRegistry"]
