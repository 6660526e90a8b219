"""A real MCP server over stdio, written with the `mcp` package, for the tests."""

from mcp.server.fastmcp import FastMCP

server = FastMCP("echo")


@server.tool()
def shout(text: str) -> str:
    """Return the text in capitals with an exclamation mark."""
    return text.upper() + "!"


@server.tool()
def refuse(reason: str = "no") -> str:
    """Always fail."""
    raise ValueError(f"refused: {reason}")


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:  # a port: serve streamable HTTP on 127.0.0.1 instead of stdio
        server.settings.host = "127.0.0.1"
        server.settings.port = int(sys.argv[1])
        server.run(transport="streamable-http")
    else:
        server.run()
