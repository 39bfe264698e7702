"""gpt-oss-nano: a tiny real-architecture gpt-oss that replays the lab's script.

``gptoss_lab.nano.path()`` returns a ready checkpoint folder, building it (training on the
CPU, once) the first time and caching it under the lab cache.
"""

from gptoss_lab.nano.build import BuildInfo, build, cache_key, path, served_name
from gptoss_lab.nano.build import info as build_info
from gptoss_lab.nano.plain import path as plain_path

__all__ = ["BuildInfo", "build", "build_info", "cache_key", "path", "plain_path", "served_name"]
