"""Command-line tools that operate shadow tests deployed with shadow-constructs.

``shadow-test`` (:mod:`shadow_cli.shadow_test`) runs or follows a stack's promotion workflow to its
verdict, shows an endpoint's live state beside what its stack declares, and guards a pipeline's
deploy against reverting a promotion. Standard library and boto3 only: no CDK import.
"""
