"""The fault matrix: daemons killed, stopped or cut off from the database or the broker
at each recorded phase of each operation, and the checks that every server settles."""
