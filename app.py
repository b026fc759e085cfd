#!/usr/bin/env python3
"""The example shadow-test app: `cdk synth`, `cdk deploy`, `cdk destroy` run this.

cdk-nag's AwsSolutions checks run on every synth (disable with `-c nag=false`).
"""

import aws_cdk as cdk

from stacks import ManagedShadowTestStack, ManagedTestConfig, ShadowTestConfig, ShadowTestStack


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    config = ShadowTestConfig.load(app.node.try_get_context(ShadowTestConfig.CONTEXT_KEY),
                                   app.node.try_get_context(ShadowTestConfig.FILE_CONTEXT_KEY))
    ShadowTestStack(app, "ChurnShadowTest", config=config,
                    description="shadow-constructs example: churn model v2 shadowing v1 on SageMaker")
    managed = ManagedTestConfig.load(app.node.try_get_context(ManagedTestConfig.CONTEXT_KEY),
                                     app.node.try_get_context(ManagedTestConfig.FILE_CONTEXT_KEY))
    if managed.endpoint_name is not None:  # the managed test needs an endpoint that exists already
        ManagedShadowTestStack(app, "ChurnManagedShadowTest", config=managed,
                               description="shadow-constructs example: managed shadow test on an existing endpoint")
    if str(app.node.try_get_context("nag")).lower() != "false":
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
