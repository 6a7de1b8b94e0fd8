"""From a link to a connected number: links, the signup's completion and the Graph steps
after it, update links, verification, recovery, phones, WABAs, branding, sending, and
lifecycle events.
"""
