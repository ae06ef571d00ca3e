"""`make doctor`: names the cause of "Unable to fetch link_token", before and after deploying.

Three depths, each reusing the service's own rules (`linktoken.config`, `secret_store`,
`plaid_errors`, `problems`, `plaiditems.aws_calls`, `plaidhooks`) rather than a copy of them:

- offline (default): the configuration and the secret it points to (`config_checks`,
  `secret_checks`);
- `--live`: the network path to Plaid and one `/link/token/create` per platform (`network`,
  `live`);
- `--function NAME` / `--stack NAME`: a deployed function's configuration (each of a stack's
  functions, by logical id; which one it is, by its Handler: `roles`), the Items table and key
  it names (`storage_checks`), the webhook queue and, with --stack, its dead-letter queue
  (`queue_checks`; both read through `aws_reads`), and its recent failure lines by cause, with
  the exchange's orphaned Items (`deployed`), the webhook receiver's rejections by reason and
  the processor's outcomes (`webhook_logs`).

Every check is a `Finding`; `render` prints them (text or `--json`) with secrets redacted.
"""
