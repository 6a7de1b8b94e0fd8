"""Every public route that takes no API key: the end-user's hosted signup page, its
callback and assets, the root page, and Meta's webhooks (the app's and each number's).
"""
