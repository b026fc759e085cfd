#!/usr/bin/env python3
"""The example shadow-test app: `cdk synth`, `cdk deploy`, `cdk destroy` run this.

cdk-nag's AwsSolutions checks run on every synth (disable with `-c nag=false`).
"""

import gc
import os

# jsii's Node process runs CDK's template validation engine (WebAssembly). With Node's default of four V8 worker
# threads, compiling it in the background swamps a small machine: on 2 cores a synth spends ~3 s more CPU and
# takes ~4 s longer. 0 sizes the pool to the machine (one worker less than it has cores). Output is unchanged.
if "--v8-pool-size" not in os.environ.get("NODE_OPTIONS", ""):
    os.environ["NODE_OPTIONS"] = f"{os.environ.get('NODE_OPTIONS', '')} --v8-pool-size=0".strip()

# Importing aws-cdk-lib's Python bindings makes ~150,000 long-lived objects (its service modules are megabytes of
# generated classes): no garbage collection passes over them while they load, and none later (at exit, Python's
# final collections would walk them all: ~1 s of a `cdk synth`). They live as long as the app anyway.
gc.disable()
try:
    import aws_cdk as cdk

    from stacks import ManagedShadowTestStack, ManagedTestConfig, ShadowTestConfig, ShadowTestStack
finally:
    gc.enable()
gc.freeze()


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    # Both configurations first: a bad value in either fails before any construct is made.
    config = ShadowTestConfig.load(app.node.try_get_context(ShadowTestConfig.CONTEXT_KEY),
                                   app.node.try_get_context(ShadowTestConfig.FILE_CONTEXT_KEY))
    managed = ManagedTestConfig.load(app.node.try_get_context(ManagedTestConfig.CONTEXT_KEY),
                                     app.node.try_get_context(ManagedTestConfig.FILE_CONTEXT_KEY))
    ShadowTestStack(app, "ChurnShadowTest", config=config,
                    description="shadow-constructs example: churn model v2 shadowing v1 on SageMaker")
    if managed.endpoint_name is not None:  # the managed test needs an endpoint that exists already
        ManagedShadowTestStack(app, "ChurnManagedShadowTest", config=managed,
                               description="shadow-constructs example: managed shadow test on an existing endpoint")
    if str(app.node.try_get_context("nag")).lower() != "false":
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
