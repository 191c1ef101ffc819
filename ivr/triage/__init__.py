"""Triage of a caller's message: what an operator checks on a ticket, suggested from the transcript.

- `classifier`: the category classifier (TF-IDF + softmax regression in numpy);
- `dispatch`: the dispatch catalogue, training and evaluation, and `Dispatcher.suggest`;
- `gazetteer`: Beijing place names (district, street, area) with their evidence spans;
- `urgency`: gas, fire, violence and other hazards;
- `autofill`: the caller's name, callback number and address;
- `suggest`: a suggestion as stored on a ticket, and the suggester the ticket store is given.

Nothing here knows about tickets or calls: text in, typed suggestions out.
"""
