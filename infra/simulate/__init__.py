"""`make simulate` (`python -m infra.simulate`): one Item's life through the running service,
step by step, with the Item's `health` after each step.

    1 create       a link token (POST /link-token), its Link session completed by the stand-in
    2 exchange     POST /items with that public token and Link's metadata
    3 reset login  the stand-in's /sandbox/item/reset_login for the Item
    4 webhook      GET /items polled until the ITEM ERROR webhook made it `login_required`
    5 update mode  POST /link-token {"item_id"}, that Link session completed (the Item repaired)
    6 refresh      POST /items/{item_id}/refresh: health from /item/get, `healthy`
    7 remove       DELETE /items/{item_id}, and GET /items no longer lists it

By default it starts `make serve` itself (serve_process, a free loopback port, moto and the
Plaid stand-in) and stops it at the end; `--url URL --jwt TOKEN [--standin URL]` uses a
service already running on loopback. Against Plaid Sandbox (PLAID_CLIENT_ID/PLAID_SECRET)
webhooks cannot reach this machine and Sandbox's reset_login needs the access token, which the
service never gives out: the output says so and those steps are skipped.

Modules: `service` (HTTP calls to the API), `plaid_side` (what plays Plaid: the stand-in or
Sandbox), `steps` (the lifecycle, each step checked), `report` (the lines printed, no secret),
`__main__` (arguments; starting and stopping make serve).
"""
