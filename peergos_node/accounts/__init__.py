"""Accounts: encrypted login data, entry points, login, signup and second factors (spec/peergos.md §2).

Modules (import from them directly):

- `entry_points`  `EntryPoint`, `EntryPoints`, `UserStaticData` (the encrypted login blob)
- `login_data`    `LoginData`, `LoginResponse`, the `setLogin` detached-signature auth
- `time_limited`  signed-time and signed-request auth (Java `TimeLimited`, `TimeLimitedClient`)
- `mfa`           second-factor formats (`MultiFactorAuthMethod`, `...Request`, `...Response`) and rules
- `totp`          RFC 6238 TOTP codes and `TotpKey` (`otpauth://` URI)
- `backup_codes`  single-use backup codes and the stored hash set
"""
