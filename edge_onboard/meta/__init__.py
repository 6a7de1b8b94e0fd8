"""Meta's side: the Graph client, test and live modes (which Meta each runs against),
reading Meta's webhooks into the typed message model, and the built-in fake Meta.
"""
