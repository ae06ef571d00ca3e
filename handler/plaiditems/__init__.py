"""Items: what an app needs from the moment Link succeeds until the user disconnects the bank.

The public token is exchanged once (`exchange`), the access token is sealed with KMS under an
encryption context naming its Item and owner (`vault`) and kept in DynamoDB (`store`); Items
are listed with their health, removed at Plaid and then in the table, and opened for Link's
update mode. Like `linktoken`, nothing here knows Lambda: `endpoint` maps HTTP events to the
service and back.
"""
