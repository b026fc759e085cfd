// The emulator's IAM decisions, made by a maintained evaluator: @cloud-copilot/iam-simulate (pinned in
// package.json, installed into ./node_modules by `make setup`; AGPL-3.0, a test tool that never ships).
//
// Protocol: one JSON object per line on stdin, {"id": N, "simulation": {...}} (iam-simulate's Simulation: the
// request, the principal's identity policies, the resource's policy); one JSON object per line on stdout,
// {"id": N, "result": "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | "Error", "reason": "...",
//  "ignoredContextKeys": [...]}. {"id": N, "wildcardOnly": ["service", "Action"]} answers {"id": N,
// "wildcardOnly": true | false}: whether the Service Authorization Reference lists no resource type for the action.
import { createInterface } from 'node:readline'
import { loadPolicy } from '@cloud-copilot/iam-policy'
import { allowedContextKeysForRequest, isWildcardOnlyAction, runSimulation } from '@cloud-copilot/iam-simulate'

// iam-simulate's core engine, for the one case below where its checked entry point drops a valid context key. Its
// own runUnsafeSimulation loads the resource policy without a name and fails on it, so the same call is made here.
const engine = new URL('./', import.meta.resolve('@cloud-copilot/iam-simulate'))
const { authorize } = await import(new URL('core_engine/CoreSimulatorEngine.js', engine))
const { AwsRequestImpl } = await import(new URL('request/request.js', engine))
const { RequestContextImpl } = await import(new URL('requestContext.js', engine))
const { DiscoveryContextKeyConstraints } = await import(new URL('context_keys/discoveryContextKeyConstraints.js', engine))

function authorizeUnchecked(simulation, wildcardOnly) {
  const request = new AwsRequestImpl(simulation.request.principal, simulation.request.resource,
    simulation.request.action, new RequestContextImpl(simulation.request.contextVariables), wildcardOnly)
  return authorize({
    request,
    sessionPolicy: undefined,
    identityPolicies: simulation.identityPolicies.map((p) => loadPolicy(p.policy, { name: p.name })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: simulation.resourcePolicy ? loadPolicy(simulation.resourcePolicy, { name: 'ResourcePolicy' }) : undefined,
    permissionBoundaries: undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: { simulationMode: 'Strict', discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]) },
    serviceSettings: { s3: { blockPublicAccess: undefined } },
  })
}

const write = (answer) => process.stdout.write(JSON.stringify(answer) + '\n')

function statements(analysis, key) {
  return (analysis?.[key] ?? []).map((s) => s.statement?.Sid ?? s.explain?.identifier ?? '?')
}

function reasonOf(response) {
  if (response.resultType === 'error') return JSON.stringify(response.errors)
  const analysis = response.result?.analysis ?? {}
  const identity = analysis.identityAnalysis ?? {}
  const resource = analysis.resourceAnalysis ?? {}
  const parts = [`identity: ${identity.result ?? 'none'}`, `resource policy: ${resource.result ?? 'none'}`]
  const denies = [...statements(identity, 'denyStatements'), ...statements(resource, 'denyStatements')]
  if (denies.length) parts.push(`explicit deny by statement(s) ${denies.join(', ')}`)
  const allows = [...statements(identity, 'allowStatements'), ...statements(resource, 'allowStatements')]
  if (allows.length) parts.push(`allowed by statement(s) ${allows.join(', ')}`)
  return parts.join('; ')
}

async function answer(line) {
  let message
  try {
    message = JSON.parse(line)
  } catch (error) {
    write({ id: null, result: 'Error', reason: `not JSON: ${error}` })
    return
  }
  try {
    if (message.wildcardOnly) {
      write({ id: message.id, wildcardOnly: await isWildcardOnlyAction(...message.wildcardOnly) })
      return
    }
    const simulation = message.simulation
    let response = await runSimulation(simulation, {})
    let ignored = response.result?.ignoredContextKeys ?? []
    // iam-simulate 0.1.173 recognizes a variable condition key only after a slash (aws:PrincipalTag/NAME): a key
    // such as kms:EncryptionContext:aws:s3:arn, which the Service Authorization Reference lists for kms:Decrypt as
    // kms:EncryptionContext:${EncryptionContextKey}, is dropped from the request and every condition on it fails.
    // Such keys are put back and the (already validated) simulation is run again on iam-simulate's unchecked path.
    const variable = ignored.length ? matchesVariableKeys(ignored, simulation) : Promise.resolve([])
    if (response.resultType !== 'error' && (await variable).length) {
      const kept = await variable
      const context = Object.fromEntries(Object.entries(simulation.request.contextVariables)
        .filter(([key]) => !ignored.includes(key) || kept.includes(key)))
      const [service, action] = simulation.request.action.split(':')
      const analysis = authorizeUnchecked({ ...simulation, request: { ...simulation.request, contextVariables: context } },
        await isWildcardOnlyAction(service, action))
      response = { resultType: 'single', overallResult: analysis.result, result: { analysis } }
      ignored = ignored.filter((key) => !kept.includes(key))
    }
    write({
      id: message.id,
      result: response.resultType === 'error' ? 'Error' : response.overallResult,
      reason: reasonOf(response),
      identity: response.result?.analysis?.identityAnalysis?.result ?? null,
      resourcePolicy: response.result?.analysis?.resourceAnalysis?.result ?? null,
      ignoredContextKeys: ignored,
    })
  } catch (error) {
    write({ id: message.id, result: 'Error', reason: String(error?.stack ?? error) })
  }
}

async function matchesVariableKeys(keys, simulation) {
  const [service, action] = simulation.request.action.split(':')
  const allowed = await allowedContextKeysForRequest(service, action, simulation.request.resource.resource, false)
  const patterns = allowed.filter((key) => key.includes('${')).map((key) => new RegExp(
    '^' + key.split(/\$\{[^}]+\}/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+') + '$'))
  return keys.filter((key) => patterns.some((pattern) => pattern.test(key.toLowerCase())))
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
lines.on('line', (line) => {
  if (line.trim()) answer(line)
})
