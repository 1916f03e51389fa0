"""The ``hugectr`` command. ``hugectr plugins`` lists what is installed.

Exit codes: 0 success, 1 a HugeCTR error (message on stderr), 2 usage error.
"""
from __future__ import annotations

import argparse
import sys

from .errors import HugeCTRError


def _cmd_plugins(args) -> int:
    from .plugins import list_plugins, registry

    rows = [("kind", "name", "distribution", "version", "cuda kernels")]
    for e in list_plugins():
        if args.kind and e.kind != args.kind:
            continue
        rows.append((e.kind, e.name, e.distribution, e.version, "yes" if e.ships_kernels else "no"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    for kind in ("layers", "embeddings", "readers", "optimizers", "filesystems"):
        for name, entries in registry(kind)._conflicts.items():
            print(f"CONFLICT {kind}:{name} provided by {', '.join(e.distribution for e in entries)}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hugectr", description="HugeCTR-compatible training on NumPy or CuPy.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plugins", help="list installed layers, embeddings, readers, optimizers, filesystems, hooks")
    p.add_argument("--kind", choices=["layers", "embeddings", "readers", "optimizers", "filesystems", "hooks"])
    p.set_defaults(func=_cmd_plugins)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HugeCTRError as exc:
        print(f"hugectr: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
