"""The PKI ("core node"): username claims, claim chains and their rules, and the PKI API's wire formats
(spec/peergos.md §3, §12.2, §13).

Modules (import from them directly; this package re-exports nothing, so that `accounts` and `corenode`
can use each other's formats without import cycles):

- `claims`      `Claim`, `UserPublicKeyLink`, chain CBOR, `create_initial`, `create_chain`
- `chain`       `validate_chain`, `merge` (updates), renewal, host update, migration chain, PoW helpers
- `usernames`   the username regex, banned and grandfathered names, `validate_username`
- `difficulty`  `DifficultyGenerator`: proof-of-work difficulty from the signup rate
- `dates`       `LocalDate` with Java's range, text form and arithmetic (claim expiries)
- `java_io`     DataOutputStream / `Serialize` framing (`DataWriter`, strict `DataReader`)
- `writes`      `PointerWrite`, `BlockWrite` (OpLog operations, password-change updates)
- `oplog`       `OpLog`, the atomic signup recording
- `snapshot`    `UserSnapshot`, `LinkCounts`, `BlindFollowRequest` (migration, server mirroring)
- `messages`    `/peergos/v0/core/*` request and response bodies
- `errors`      `PkiError`, `InvalidUsername`, `InvalidChain` and its subclasses
"""
