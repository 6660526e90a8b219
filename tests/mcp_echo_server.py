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
    server.run()
