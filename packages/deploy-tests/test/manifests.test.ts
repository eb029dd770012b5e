// docker-compose.yml and deploy/k8s parsed and checked against the code:
// roles against the CLI's own commands, variables against the config schema
// and .env.example (and the whole environment through loadConfig), ports
// and probe paths against what the service serves, drains against grace periods.
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { configKeys, defaults, loadConfig, parseDuration } from '@streaming-service/core'
import { cliCommands, envExampleKeys, readText, readYaml, readYamlDocuments, REPO_ROOT } from './helper.js'

const schemaKeys = new Set(configKeys)
const exampleKeys = envExampleKeys()
const { commands, migrateActions } = cliCommands()

/** Compose interpolation with nothing set in the environment: `${VAR:-default}` → default. */
const interpolated = (value: string): string => value.replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_m, _name, fallback?: string) => fallback ?? '')

function checkEnvNames (t: Test, names: string[], where: string): void {
  for (const name of names) {
    t.ok(schemaKeys.has(name), `${where}: ${name} is a variable of the config schema`)
    t.ok(exampleKeys.has(name), `${where}: ${name} is in .env.example`)
  }
}

function checkRole (t: Test, args: string[], expected: string[], where: string): void {
  t.same(args, expected, `${where} runs ${expected.join(' ')}`)
  t.ok(commands.has(args[0]!), `${where}: "${args[0]}" is a command of the CLI (${[...commands].join(', ')})`)
  if (args[0] === 'migrate') t.ok(migrateActions.has(args[1]!), `${where}: "migrate ${args[1]}" is an action of the CLI`)
}

/** `server <address>;` lines of an nginx upstream block. */
function upstreamServers (conf: string, name: string): string[] {
  const block = new RegExp(`upstream ${name} \\{([^}]*)\\}`).exec(conf)?.[1]
  if (block === undefined) throw new Error(`deploy/nginx: no upstream ${name}`)
  return [...block.matchAll(/^\s*server\s+(\S+)[^;]*;/gm)].map((m) => m[1]!)
}

t.test('docker-compose.yml: PostgreSQL, Redis, migrate, control plane, 3 relays behind nginx, Prometheus — consistent with the code', async (t) => {
  const compose = readYaml('docker-compose.yml')
  const services: Record<string, any> = compose.services
  for (const name of ['postgres', 'redis', 'migrate', 'control-plane', 'relay', 'lb', 'prometheus']) t.ok(services[name], `service ${name}`)

  const roles: Record<string, string[]> = { migrate: ['migrate', 'up'], 'control-plane': ['control-plane'], relay: ['relay'] }
  const port = String(defaults.HTTP_PORT)
  for (const [name, args] of Object.entries(roles)) {
    const service = services[name]
    checkRole(t, service.command, args, `compose ${name}`)
    t.equal(service.image, 'streaming-service:latest', `${name}: the one image`)
    t.equal(service.build.dockerfile, 'deploy/Dockerfile')
    t.ok(existsSync(join(REPO_ROOT, service.build.context, service.build.dockerfile)), `${name}: the Dockerfile exists`)
    const env: Record<string, string> = Object.fromEntries(Object.entries(service.environment).map(([k, v]) => [k, interpolated(String(v))]))
    checkEnvNames(t, Object.keys(env), `compose ${name}`)
    t.doesNotThrow(() => loadConfig(env), `${name}: its environment passes the config validation (production)`)
    t.equal(env.APP_ENV, 'production')
    t.equal(env.HTTP_PORT ?? port, port, `${name}: listens on ${port}`)
    t.ok(services[env.DB_HOST!], `${name}: DB_HOST ${env.DB_HOST} is a compose service`)
    t.ok(services[new URL(env.REDIS_URL!).hostname], `${name}: REDIS_URL points at a compose service`)
    t.ok(parseDuration(env.SHUTDOWN_DRAIN ?? defaults.SHUTDOWN_DRAIN) + 5000 <= parseDuration(service.stop_grace_period),
      `${name}: SHUTDOWN_DRAIN ${env.SHUTDOWN_DRAIN} (+5 s to close) fits in stop_grace_period ${service.stop_grace_period}`)
    t.notOk(service.ports, `${name}: publishes no port (reached through the load balancer)`)
    t.equal(env.TRUST_PROXY, interpolated(compose.networks.default.ipam.config[0].subnet),
      `${name}: X-Forwarded-* believed only from the compose network, where the load balancer is`)
  }
  t.equal(services.relay.deploy.replicas, 3, 'three relays')

  // Health checks and start order.
  for (const name of ['postgres', 'redis']) t.ok(services[name].healthcheck?.test, `${name} is health-checked`)
  for (const name of ['control-plane', 'relay']) {
    t.match(services[name].healthcheck.test.join(' '), `http://127.0.0.1:${port}/ready`, `${name}: healthy means /ready`)
    t.equal(services[name].depends_on.migrate.condition, 'service_completed_successfully', `${name} starts after the migration`)
    t.equal(services[name].depends_on.redis.condition, 'service_healthy', `${name} waits for Redis`)
  }
  t.equal(services.migrate.healthcheck.disable, true, 'the one-shot migration has no health check')
  t.equal(services.migrate.depends_on.postgres.condition, 'service_healthy')
  t.equal(services.lb.depends_on['control-plane'].condition, 'service_healthy')
  t.equal(services.lb.depends_on.relay.condition, 'service_healthy')
  t.ok(services.prometheus.depends_on.relay && services.prometheus.depends_on['control-plane'])

  // The database the app connects to is the one the postgres service creates.
  const appEnv = services['control-plane'].environment
  t.equal(interpolated(services.postgres.environment.POSTGRES_USER), appEnv.DB_USER)
  t.equal(interpolated(services.postgres.environment.POSTGRES_DB), appEnv.DB_DATABASE)
  t.equal(services.postgres.environment.POSTGRES_PASSWORD, appEnv.DB_PASSWORD, 'the same DB_PASSWORD interpolation')

  // Published ports listen on 127.0.0.1 unless told otherwise.
  for (const [name, service] of Object.entries(services)) {
    for (const published of service.ports ?? []) {
      t.match(interpolated(String(published)), /^127\.0\.0\.1:\d+:\d+$/, `${name}: ${published} binds 127.0.0.1 by default`)
    }
  }

  // Mounted configuration exists and names the compose services.
  for (const [name, service] of Object.entries(services)) {
    for (const volume of service.volumes ?? []) {
      const source = String(volume).split(':')[0]!
      if (source.startsWith('./')) t.ok(existsSync(join(REPO_ROOT, source)), `${name}: mounted ${source} exists`)
    }
  }
  t.ok(services.lb.volumes.includes('./deploy/nginx/streaming-service.conf:/etc/nginx/conf.d/default.conf:ro'), 'nginx loads deploy/nginx')
  const nginx = readText('deploy/nginx/streaming-service.conf')
  t.same(upstreamServers(nginx, 'control_plane'), [`control-plane:${port}`], 'nginx: REST to the control-plane service')
  t.same(upstreamServers(nginx, 'relays'), [`relay:${port}`], 'nginx: streams to every replica of the relay service')
  t.match(services.lb.ports[0], /:80$/)
  t.match(nginx, /^\s*listen 80;/m)

  const prometheus = readYaml('deploy/prometheus/prometheus.yml')
  const jobs: Record<string, any> = Object.fromEntries(prometheus.scrape_configs.map((job: any) => [job.job_name, job]))
  t.same(jobs['control-plane'].static_configs[0].targets, [`control-plane:${port}`], 'Prometheus scrapes the control plane')
  t.same(jobs.relay.dns_sd_configs[0], { names: ['relay'], type: 'A', port: Number(port), refresh_interval: '15s' }, 'Prometheus scrapes every relay replica')
  t.ok(services.prometheus.volumes.includes('./deploy/prometheus:/etc/prometheus:ro'))
  t.ok(services.prometheus.command.includes('--config.file=/etc/prometheus/prometheus.yml'))

  const datasource = readYaml('deploy/grafana/provisioning/datasources/prometheus.yml').datasources[0]
  t.equal(datasource.url, 'http://prometheus:9090', 'Grafana reads the compose Prometheus')
  t.ok(services.grafana.volumes.includes('./deploy/grafana/dashboards:/etc/grafana/dashboards:ro'))
  t.equal(readYaml('deploy/grafana/provisioning/dashboards/streaming-service.yml').providers[0].options.path, '/etc/grafana/dashboards')
})

t.test('deploy/k8s: a kustomize base whose roles, ports, probes, variables and grace periods match the code', async (t) => {
  const kustomization = readYaml('deploy/k8s/kustomization.yaml')
  t.equal(kustomization.kind, 'Kustomization')
  const files = readdirSync(join(REPO_ROOT, 'deploy/k8s')).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml').sort()
  t.same([...kustomization.resources].sort(), files, 'every manifest is a resource of the base, and every resource exists')
  const docs: any[] = kustomization.resources.flatMap((file: string) => readYamlDocuments(`deploy/k8s/${file}`))
  const find = (kind: string, name: string): any => {
    const doc = docs.find((d) => d.kind === kind && d.metadata.name === name)
    if (doc === undefined) throw new Error(`deploy/k8s: no ${kind} ${name}`)
    return doc
  }
  const image = kustomization.images[0].name

  // Configuration: every key is a real variable, and together they are a valid production config.
  const configMap = find('ConfigMap', 'streaming-service-config')
  const secret = find('Secret', 'streaming-service-secrets')
  checkEnvNames(t, Object.keys(configMap.data), 'ConfigMap')
  checkEnvNames(t, Object.keys(secret.stringData), 'Secret')
  const env: Record<string, string> = { ...configMap.data, ...secret.stringData }
  for (const [key, value] of Object.entries(env)) t.type(value, 'string', `${key} is a string (a ConfigMap holds no numbers)`)
  const config = loadConfig(env)
  t.equal(config.appEnv, 'production')
  t.notOk(config.db.embedded, 'a real PostgreSQL')
  t.ok(config.redis.url, 'the Redis backplane')
  t.not(config.trustProxy, false, 'X-Forwarded-* believed from the ingress controller')
  t.not(typeof config.trustProxy, 'number', 'by address: a hop count would trust any pod')
  const port = config.http.port
  const drainSeconds = config.shutdownDrainMs / 1000

  const workloads: Array<[string, string, string[]]> = [
    ['Deployment', 'streaming-service-control-plane', ['control-plane']],
    ['Deployment', 'streaming-service-relay', ['relay']],
    ['Job', 'streaming-service-migrate', ['migrate', 'up']],
  ]
  for (const [kind, name, args] of workloads) {
    const workload = find(kind, name)
    const pod = workload.spec.template.spec
    t.equal(pod.containers.length, 1, `${name}: one container`)
    const container = pod.containers[0]
    t.equal(container.image, `${image}:latest`, `${name}: the one image (kustomize images: sets the tag)`)
    checkRole(t, container.args, args, name)
    t.notOk(container.command, `${name}: keeps the image's entrypoint`)
    t.same(container.envFrom, [{ configMapRef: { name: configMap.metadata.name } }, { secretRef: { name: secret.metadata.name } }], `${name}: configuration from the ConfigMap and the Secret`)
    if (container.env !== undefined) checkEnvNames(t, container.env.map((e: any) => e.name), name)
    t.equal(pod.securityContext.runAsNonRoot, true, `${name}: non-root`)
    t.not(pod.securityContext.runAsUser, 0)
    t.equal(container.securityContext.allowPrivilegeEscalation, false)
    t.equal(container.securityContext.readOnlyRootFilesystem, true)
    if (kind === 'Job') {
      t.ok(['OnFailure', 'Never'].includes(pod.restartPolicy), 'the migration Job does not restart forever')
      continue
    }

    const labels = workload.spec.template.metadata.labels
    t.match(labels, workload.spec.selector.matchLabels, `${name}: the selector matches its pods`)
    t.same(container.ports, [{ name: 'http', containerPort: port }], `${name}: containerPort ${port} = HTTP_PORT`)
    t.same(container.readinessProbe.httpGet, { path: '/ready', port: 'http' }, `${name}: readiness on /ready`)
    t.same(container.livenessProbe.httpGet, { path: '/health', port: 'http' }, `${name}: liveness on /health`)
    t.same(container.startupProbe.httpGet, { path: '/health', port: 'http' }, `${name}: startup on /health`)
    t.same(workload.spec.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' }, `${name}: scraped by Prometheus`)
    t.ok(container.resources.requests.cpu, `${name}: CPU request (HPA utilization needs one)`)

    const preStop: string[] = container.lifecycle.preStop.exec.command
    t.equal(preStop[0], 'sleep', `${name}: preStop waits for the endpoint to be removed`)
    const preStopSeconds = Number(preStop[1])
    t.ok(preStopSeconds >= 3, `${name}: preStop pause ${preStopSeconds} s lets endpoints and the Ingress drop the pod`)
    const grace = pod.terminationGracePeriodSeconds
    t.ok(grace >= preStopSeconds + drainSeconds + 10,
      `${name}: terminationGracePeriodSeconds ${grace} > preStop ${preStopSeconds} s + SHUTDOWN_DRAIN ${drainSeconds} s + 10 s to close`)

    const service = find('Service', name)
    t.same(service.spec.selector, workload.spec.selector.matchLabels, `${name}: the Service selects its pods`)
    t.same(service.spec.ports, [{ name: 'http', port, targetPort: 'http' }])
    const pdb = find('PodDisruptionBudget', name)
    t.same(pdb.spec.selector.matchLabels, workload.spec.selector.matchLabels, `${name}: PodDisruptionBudget on its pods`)
  }
  t.equal(find('Deployment', 'streaming-service-relay').spec.template.spec.terminationGracePeriodSeconds > 30, true, 'relays get more than the default 30 s')

  const hpa = find('HorizontalPodAutoscaler', 'streaming-service-relay')
  t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'streaming-service-relay' }, 'the HPA scales the relays')
  t.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas)
  t.equal(find('PodDisruptionBudget', 'streaming-service-relay').spec.maxUnavailable, 1)

  // One public address: REST to the control plane, streams and the console to the relays.
  const ingress = find('Ingress', 'streaming-service')
  const rule = ingress.spec.rules[0]
  t.equal(`wss://${rule.host}`, config.ws.baseUrl, 'WS_BASE_URL is the Ingress host')
  const routes = Object.fromEntries(rule.http.paths.map((p: any) => [`${p.pathType} ${p.path}`, p.backend.service]))
  t.same(routes, {
    'Prefix /sessions': { name: 'streaming-service-control-plane', port: { name: 'http' } },
    'Prefix /ws/': { name: 'streaming-service-relay', port: { name: 'http' } },
    'Prefix /console/': { name: 'streaming-service-relay', port: { name: 'http' } },
    'Exact /': { name: 'streaming-service-relay', port: { name: 'http' } },
  }, 'Ingress routes (nodes\' /metrics, /ready, /health are not published)')
  for (const timeout of ['proxy-read-timeout', 'proxy-send-timeout']) {
    const seconds = Number(ingress.metadata.annotations[`nginx.ingress.kubernetes.io/${timeout}`])
    t.ok(seconds >= 10 * config.ws.pingIntervalMs / 1000, `Ingress ${timeout} ${seconds} s outlasts the WebSocket keepalive many times`)
  }
})
