"""The HTTP gateway: OpenAI- and Anthropic-compatible endpoints in front of the router.

Build the server with `create_app(router, settings)`; `taskroute serve` runs it. Importing this
package starts nothing: the server's own dependencies load when the app is built.
"""

from taskroute.gateway.settings import GatewaySettings

__all__ = ["GatewaySettings"]
