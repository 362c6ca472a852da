"""`peergos quota ...`: signup tokens and user quotas on this server's database (spec/peergos.md §13).

    peergos quota token create [-count N]   print N new single-use signup tokens (hex)
    peergos quota token list                list tokens and who used them
    peergos quota show -username NAME       a user's quota and usage
    peergos quota set -username NAME -quota 10g

Database selection is the daemon's (`-PEERGOS_PATH`, `-use-postgres true -postgres.*`, or the saved
`$PEERGOS_PATH/config`).
"""

from __future__ import annotations

import sys
import time

from peergos_node.cli.args import Args, ArgsError, parse_size
from peergos_node.server.db import DatabaseError
from peergos_node.server.node import HomeServerConfig, open_database
from peergos_node.server.stores.tokens import SqlTokenStore
from peergos_node.server.stores.usage import SqlUsageStore

USAGE = __doc__ or ""


def run(argv: list[str]) -> int:
    """Entry point."""
    try:
        args = Args.parse(argv)
        cmd = args.commands
        cfg = HomeServerConfig.from_args(args)
        db = open_database(cfg)
        try:
            if cmd[:2] == ["token", "create"]:
                count = args.get_int("count", 1)
                if not 1 <= count <= 10_000:
                    raise ArgsError("-count must be 1..10000")
                for token in SqlTokenStore(db).create(int(time.time() * 1000), count):
                    print(token)
                return 0
            if cmd[:2] == ["token", "list"]:
                for row in SqlTokenStore(db).list():
                    print(f"{row.token} {'used by ' + row.used_by if row.used_by else 'unused'}")
                return 0
            if cmd[:1] == ["show"]:
                name = args.get("username")
                usage = SqlUsageStore(db)
                print(f"{name}: quota {usage.quota(name)} bytes, used {usage.total_usage(name)} bytes")
                return 0
            if cmd[:1] == ["set"]:
                name = args.get("username")
                SqlUsageStore(db).set_quota(name, parse_size(args.get("quota"), "quota"))
                print(f"{name}: quota set to {SqlUsageStore(db).quota(name)} bytes")
                return 0
        finally:
            db.close()
        print(USAGE, file=sys.stderr)
        return 2
    except (ArgsError, KeyError) as e:
        print(f"peergos quota: {e}", file=sys.stderr)
        return 2
    except DatabaseError as e:
        print(f"peergos quota: {e}", file=sys.stderr)
        return 1
