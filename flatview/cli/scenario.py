"""Scenario files (YAML, ``version: 1``): a region tree, address spaces, and steps.

Format: docs/scenario-format.md.  Every problem is a :class:`ScenarioError` whose
text is one line naming the file, the line and the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib import resources
from typing import Any

import attrs
import yaml

from flatview.address_space import AddressSpace
from flatview.cli.numbers import parse_number
from flatview.dirty import DirtyLogClient
from flatview.errors import FlatviewError, InputError, read_input
from flatview.region import MemoryRegion, MmioOps, RegionKind
from flatview.system import MemorySystem


class ScenarioError(InputError):
    """A problem in a scenario file."""


EXAMPLE = "example:"
"""``example:NAME`` names a scenario bundled with the package (``flatview/cli/scenarios``)."""


def bundled_examples() -> list[str]:
    """The names of the bundled scenarios."""
    folder = resources.files("flatview.cli") / "scenarios"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def scenario_text(path: str) -> str:
    """The text of a scenario file, or of a bundled one (``example:NAME``)."""
    if not path.startswith(EXAMPLE):
        return read_input(path)
    name = path[len(EXAMPLE) :]
    if name not in bundled_examples():
        raise ScenarioError(
            path, 0, f"no bundled example {name!r} (have: {', '.join(bundled_examples())})"
        )
    return (resources.files("flatview.cli") / "scenarios" / f"{name}.yaml").read_text()


# -- YAML with line numbers ------------------------------------------------------------
class Node:
    """A parsed YAML value with the (1-based) line it starts on."""

    def __init__(self, value: Any, line: int) -> None:
        self.value = value
        self.line = line
        self.key_line = line
        """For a mapping value: the line of its key (where an unknown key is reported)."""

    def plain(self) -> Any:
        """The value without line numbers (for messages)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


MAX_DEPTH = 64
"""Deepest nesting of mappings and lists a scenario may have."""
MAX_NODES = 200_000
"""Most values a scenario may expand to (YAML aliases included: no alias bombs)."""


def _convert(node: yaml.Node, path: str, budget: list[int], depth: int = 0) -> Node:
    line = node.start_mark.line + 1
    budget[0] -= 1
    if budget[0] < 0:
        raise ScenarioError(path, line, f"more than {MAX_NODES} values (YAML aliases included)")
    if depth > MAX_DEPTH:
        raise ScenarioError(path, line, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for k, v in node.value:
            key = _convert(k, path, budget, depth + 1)
            if not isinstance(key.value, (str, int)) or isinstance(key.value, bool):
                raise ScenarioError(path, key.line, "mapping keys must be names")
            name = str(key.value)
            if name in out:
                raise ScenarioError(path, key.line, f"duplicate key {name!r}")
            converted = _convert(v, path, budget, depth + 1)
            converted.key_line = key.line
            out[name] = converted
        return Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(v, path, budget, depth + 1) for v in node.value], line)
    assert isinstance(node, yaml.ScalarNode)
    loader = yaml.SafeLoader("")
    try:
        return Node(loader.construct_object(node, deep=True), line)
    except yaml.YAMLError as e:
        raise ScenarioError(path, line, f"bad value: {e.__class__.__name__}") from None
    finally:
        loader.dispose()


def load_yaml(text: str, path: str) -> Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ScenarioError(path, line, f"bad YAML: {e.problem or e.context}") from None
    except yaml.reader.ReaderError as e:
        line = text[: e.position].count("\n") + 1
        char = chr(e.character) if isinstance(e.character, int) else e.character
        raise ScenarioError(path, line, f"bad YAML: control character {char!r}") from None
    except yaml.YAMLError as e:
        raise ScenarioError(path, 1, f"bad YAML: {e}".splitlines()[0]) from None
    except RecursionError:
        raise ScenarioError(path, 1, f"nested deeper than {MAX_DEPTH} levels") from None
    if root is None:
        raise ScenarioError(path, 1, "empty file")
    return _convert(root, path, [MAX_NODES])


# -- the scenario ------------------------------------------------------------------------
REGION_KEYS = {
    "kind",
    "size",
    "max_size",
    "target",
    "offset",
    "readonly",
    "enabled",
    "romd",
    "nonvolatile",
    "unmergeable",
    "log",
}
KINDS = tuple(k.value for k in RegionKind)
OPS: dict[str, tuple[set[str], set[str]]] = {
    # op -> (required keys, optional keys), "op" itself excluded
    "enable": ({"region"}, set()),
    "disable": ({"region"}, set()),
    "set_readonly": ({"region", "value"}, set()),
    "set_romd": ({"region", "value"}, set()),
    "set_nonvolatile": ({"region", "value"}, set()),
    "set_unmergeable": ({"region", "value"}, set()),
    "set_size": ({"region", "size"}, set()),
    "set_address": ({"region", "at"}, set()),
    "set_alias_offset": ({"region", "offset"}, set()),
    "add_subregion": ({"parent", "region", "at"}, {"priority"}),
    "del_subregion": ({"parent", "region"}, set()),
    "log_start": ({"region", "client"}, set()),
    "log_stop": ({"region", "client"}, set()),
    "global_log_start": (set(), set()),
    "global_log_stop": (set(), set()),
}


@attrs.frozen
class Op:
    name: str
    args: dict[str, Any]
    line: int


@attrs.frozen
class Step:
    name: str
    ops: tuple[Op, ...]
    line: int


class Scenario:
    """A built scenario: ``system``, ``regions`` by name, ``spaces`` by name, ``steps``."""

    def __init__(self, path: str, text: str | None = None) -> None:
        self.path = path
        if text is None:
            text = scenario_text(path)
        root = load_yaml(text, path)
        doc = self._mapping(root, "the file")
        self._check_keys(
            doc, {"version", "regions", "subregions", "address_spaces", "steps"}, "top level"
        )
        version = doc.get("version")
        if version is None or version.value != 1:
            raise ScenarioError(
                path, version.line if version else root.line, "expected 'version: 1'"
            )
        self.system = MemorySystem()
        self.regions: dict[str, MemoryRegion] = {}
        self.steps: list[Step] = []
        self.applied = 0
        regions = doc.get("regions")
        if regions is None:
            raise ScenarioError(path, root.line, "missing 'regions'")
        self._build_regions(regions)
        if "subregions" in doc:
            self._build_subregions(doc["subregions"])
        self.spaces: dict[str, AddressSpace] = {}
        spaces = doc.get("address_spaces")
        if spaces is None:
            raise ScenarioError(path, root.line, "missing 'address_spaces'")
        for name, node in self._mapping(spaces, "address_spaces").items():
            self.spaces[name] = AddressSpace(self._region(node), name)
        if not self.spaces:
            raise ScenarioError(path, spaces.line, "no address space")
        if "steps" in doc:
            self._parse_steps(doc["steps"])

    # -- helpers -----------------------------------------------------------------------
    def _err(self, node: Node | int, message: str) -> ScenarioError:
        line = node if isinstance(node, int) else node.line
        return ScenarioError(self.path, line, message)

    def _mapping(self, node: Node, what: str) -> dict[str, Node]:
        if not isinstance(node.value, dict):
            raise self._err(node, f"{what} must be a mapping")
        return node.value

    def _check_keys(self, mapping: dict[str, Node], allowed: set[str], where: str) -> None:
        for key, node in mapping.items():
            if key not in allowed:
                line = node.key_line
                raise self._err(line, f"unknown key {key!r} in {where}")

    def _number(self, node: Node, what: str) -> int:
        try:
            return parse_number(node.value)
        except ValueError as e:
            raise self._err(node, f"{what}: {e}") from None

    def _bool(self, node: Node, what: str) -> bool:
        if not isinstance(node.value, bool):
            raise self._err(node, f"{what}: expected true or false, got {node.value!r}")
        return node.value

    def _name(self, node: Node, what: str) -> str:
        if not isinstance(node.value, str):
            raise self._err(node, f"{what} must be a string, got {node.plain()!r}")
        return node.value

    def _region(self, node: Node) -> MemoryRegion:
        name = self._name(node, "a region name")
        if name not in self.regions:
            raise self._err(node, f"unknown region {name!r}")
        return self.regions[name]

    def _library(self, node: Node, fn: Callable[[], object]) -> None:
        try:
            fn()
        except InputError:
            raise  # already names the file and line
        except FlatviewError as e:
            raise self._err(node, str(e)) from None

    # -- building ----------------------------------------------------------------------------
    def _build_regions(self, node: Node) -> None:
        specs = self._mapping(node, "regions")
        pending = dict(specs)
        # aliases need their target first: build in dependency order
        while pending:
            progressed = False
            for name, spec_node in list(pending.items()):
                spec = self._mapping(spec_node, f"region {name!r}")
                self._check_keys(spec, REGION_KEYS, f"region {name!r}")
                target = spec.get("target")
                if target is not None and self._name(target, "an alias target") in pending:
                    continue
                self._build_region(name, spec_node, spec)
                del pending[name]
                progressed = True
            if not progressed:
                name, spec_node = next(iter(pending.items()))
                tgt = self._mapping(spec_node, name)["target"]
                raise self._err(tgt, f"alias {name!r}: target {tgt.value!r} is unknown or a cycle")

    def _build_region(self, name: str, node: Node, spec: dict[str, Node]) -> None:
        s = self.system
        kind_node = spec.get("kind")
        if kind_node is None or kind_node.value not in KINDS:
            raise self._err(
                kind_node or node, f"region {name!r}: kind must be one of {', '.join(KINDS)}"
            )
        kind = kind_node.value
        if "size" not in spec:
            raise self._err(node, f"region {name!r}: missing 'size'")
        size = self._number(spec["size"], f"region {name!r} size")
        allowed = {"kind", "size", "enabled", "readonly", "nonvolatile", "unmergeable", "log"}
        allowed |= {"max_size"} if kind == "ram" else set()
        allowed |= {"target", "offset"} if kind == "alias" else set()
        allowed |= {"romd"} if kind == "rom_device" else set()
        self._check_keys(spec, allowed, f"region {name!r} ({kind})")

        def make() -> MemoryRegion:
            if kind == "alias":
                if "target" not in spec:
                    raise self._err(node, f"alias {name!r}: missing 'target'")
                target = self._region(spec["target"])
                offset = self._number(spec["offset"], "offset") if "offset" in spec else 0
                return s.alias(name, target, offset, size)
            if kind == "ram":
                max_size = (
                    self._number(spec["max_size"], "max_size") if "max_size" in spec else None
                )
                return s.ram(name, size, max_size=max_size)
            if kind in ("mmio", "rom_device"):
                return getattr(s, kind)(name, size, MmioOps())  # type: ignore[no-any-return]
            return getattr(s, kind)(name, size)  # type: ignore[no-any-return]

        try:
            mr = make()
        except FlatviewError as e:
            if isinstance(e, ScenarioError):
                raise
            raise self._err(node, str(e)) from None
        self.regions[name] = mr
        for key, setter in (
            ("readonly", mr.set_readonly),
            ("nonvolatile", mr.set_nonvolatile),
            ("unmergeable", mr.set_unmergeable),
            ("romd", mr.set_romd),
            ("enabled", mr.set_enabled),
        ):
            if key in spec:
                value = self._bool(spec[key], f"region {name!r} {key}")
                self._library(spec[key], partial(setter, value))
        if "log" in spec:
            log = spec["log"]
            for cnode in log.value if isinstance(log.value, list) else [log]:
                self._library(cnode, partial(mr.log_start, str(cnode.value)))

    def _build_subregions(self, node: Node) -> None:
        for parent_name, children in self._mapping(node, "subregions").items():
            parent = self._region(Node(parent_name, children.key_line))
            if not isinstance(children.value, list):
                raise self._err(children, f"subregions of {parent_name!r} must be a list")
            for child in children.value:
                spec = self._mapping(child, "a subregion entry")
                self._check_keys(spec, {"region", "at", "priority"}, "a subregion entry")
                for key in ("region", "at"):
                    if key not in spec:
                        raise self._err(child, f"subregion entry: missing {key!r}")
                mr = self._region(spec["region"])
                at = self._number(spec["at"], "at")
                prio = self._number(spec["priority"], "priority") if "priority" in spec else 0
                self._library(child, partial(parent.add_subregion, at, mr, prio))

    def _parse_steps(self, node: Node) -> None:
        if not isinstance(node.value, list):
            raise self._err(node, "steps must be a list")
        names: set[str] = set()
        for step in node.value:
            spec = self._mapping(step, "a step")
            self._check_keys(spec, {"name", "ops"}, "a step")
            name = (
                self._name(spec["name"], "a step name")
                if "name" in spec
                else f"step{len(self.steps) + 1}"
            )
            if name in names:
                raise self._err(spec.get("name") or step, f"duplicate step name {name!r}")
            names.add(name)
            ops_node = spec.get("ops")
            if ops_node is None or not isinstance(ops_node.value, list):
                raise self._err(ops_node or step, f"step {name!r}: 'ops' must be a list")
            ops = []
            for op_node in ops_node.value:
                op = self._mapping(op_node, "an op")
                if "op" not in op:
                    raise self._err(op_node, "op entry without 'op'")
                kind = op["op"].value
                if kind not in OPS:
                    raise self._err(op["op"], f"unknown op {kind!r}")
                required, optional = OPS[kind]
                self._check_keys(op, required | optional | {"op"}, f"op {kind!r}")
                for key in required:
                    if key not in op:
                        raise self._err(op_node, f"op {kind!r}: missing {key!r}")
                for key in ("region", "parent"):
                    if key in op:
                        self._region(op[key])
                ops.append(Op(kind, {k: v for k, v in op.items() if k != "op"}, op_node.line))
            self.steps.append(Step(name, tuple(ops), step.line))

    # -- running steps --------------------------------------------------------------------------
    def step_index(self, name: str) -> int:
        for i, st in enumerate(self.steps):
            if st.name == name:
                return i
        known = ", ".join(st.name for st in self.steps) or "none"
        raise ScenarioError(self.path, 0, f"no step named {name!r} (steps: {known})")

    def apply(self, step: Step) -> None:
        """Run one step's ops in one transaction."""
        with self.system.transaction():
            for op in step.ops:
                self._apply_op(op)
        self.applied += 1

    def apply_many(self, steps: list[Step]) -> None:
        """Run several steps' ops as one transaction (one commit)."""
        with self.system.transaction():
            for step in steps:
                for op in step.ops:
                    self._apply_op(op)
        self.applied += len(steps)

    def address_space(self, name: str | None = None) -> AddressSpace:
        """``name``, or "memory", or the first address space."""
        if name is None:
            return self.spaces.get("memory") or next(iter(self.spaces.values()))
        if name not in self.spaces:
            raise ScenarioError(
                self.path, 0, f"no address space {name!r} (have: {', '.join(self.spaces)})"
            )
        return self.spaces[name]

    def run_until(self, index: int) -> None:
        """Apply steps until ``index`` steps have been applied (0 = initial state)."""
        while self.applied < index:
            self.apply(self.steps[self.applied])

    def _apply_op(self, op: Op) -> None:
        a = op.args
        node = Node(None, op.line)
        mr = self._region(a["region"]) if "region" in a else None

        def run() -> None:
            n = op.name
            if n in ("enable", "disable"):
                assert mr is not None
                mr.set_enabled(n == "enable")
            elif n.startswith("set_") and "value" in a:
                assert mr is not None
                getattr(mr, n)(self._bool(a["value"], f"{n} value"))
            elif n == "set_size":
                assert mr is not None
                mr.set_size(self._number(a["size"], "size"))
            elif n == "set_address":
                assert mr is not None
                mr.set_address(self._number(a["at"], "at"))
            elif n == "set_alias_offset":
                assert mr is not None
                mr.set_alias_offset(self._number(a["offset"], "offset"))
            elif n == "add_subregion":
                assert mr is not None
                prio = self._number(a["priority"], "priority") if "priority" in a else 0
                self._region(a["parent"]).add_subregion(self._number(a["at"], "at"), mr, prio)
            elif n == "del_subregion":
                assert mr is not None
                self._region(a["parent"]).del_subregion(mr)
            elif n in ("log_start", "log_stop"):
                assert mr is not None
                client = a["client"].value
                try:
                    c = DirtyLogClient.parse(str(client))
                except FlatviewError as e:
                    raise self._err(a["client"], str(e)) from None
                getattr(mr, n)(c)
            elif n == "global_log_start":
                self.system.global_log_start()
            elif n == "global_log_stop":
                self.system.global_log_stop()

        self._library(node, run)

    def close(self) -> None:
        for mr in self.regions.values():
            mr.close()
