"""Runtime code of shadow-constructs: runs inside AWS (Lambda) and locally. Stdlib + boto3 only."""
