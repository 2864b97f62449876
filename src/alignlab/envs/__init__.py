"""Environments: finite MDPs for exact planning and the safety gridworlds (one engine, one file
per environment, a vectorised fast path). Importing this registers ``alignlab/<Name>-v0`` ids."""

from alignlab.envs.engine import GridEnv, Outcome, World, compile_world, compiled, value_iteration
from alignlab.envs.registry import WORLDS, env_id, make, make_vec, register_all
from alignlab.envs.vector import GridVectorEnv

register_all()

__all__ = [
    "WORLDS",
    "GridEnv",
    "GridVectorEnv",
    "Outcome",
    "World",
    "compile_world",
    "compiled",
    "env_id",
    "make",
    "make_vec",
    "register_all",
    "value_iteration",
]
