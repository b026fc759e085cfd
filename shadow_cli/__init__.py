"""Command-line tools of shadow-constructs: ``shadow-plan`` and ``shadow-test``.

``shadow-plan`` (:mod:`shadow_cli.plan`) prints the plan of the shadow tests in a synthesized app
(``cdk.out``), read back from the templates CloudFormation would get.

``shadow-test`` (:mod:`shadow_cli.shadow_test`) runs or follows a stack's promotion workflow to its
verdict, shows an endpoint's live state beside what its stack declares, and guards a pipeline's
deploy against reverting a promotion. Standard library and boto3 only: no CDK import.
"""
