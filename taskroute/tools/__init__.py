"""Tools an application offers a model, and running the calls a model makes, in parallel."""

from taskroute.tools.execute import ToolResult, ToolStatus, run_tool_call, run_tool_calls
from taskroute.tools.registry import BadArguments, Tool, Tools, tool

__all__ = ["BadArguments", "Tool", "ToolResult", "ToolStatus", "Tools", "run_tool_call",
           "run_tool_calls", "tool"]
