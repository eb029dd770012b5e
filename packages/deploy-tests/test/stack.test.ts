// What docker-compose.yml runs, on this machine with the real programs: a
// control plane and three relays (fresh database, own Redis key prefix),
// Debian's nginx running deploy/nginx in front of them, and Debian's
// Prometheus running deploy/prometheus (and the Kubernetes scrape config)
// against them. Only addresses are rewritten: upstream servers and the
// listen port for nginx, scrape targets (and 1 s intervals) for Prometheus.
import { randomBytes, randomUUID } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import {
  connected, freePort, metric, primed, startCluster, waitFor, type ServiceProcess, type TestSocket,
} from '@streaming-service/testing'
import { program, readText, readYaml, readYamlDocuments, REPO_ROOT, scratchDir, startProgram, type Program } from './helper.js'

const nginxBin = program('nginx', 'nginx-light')
const prometheusBin = program('prometheus', 'prometheus')

const cluster = await startCluster(t, { relays: 3 })
const { controlPlane, relays } = cluster
const address = (service: ServiceProcess) => `127.0.0.1:${service.port}`

/** deploy/nginx/streaming-service.conf with its upstream servers, listen port and access log pointed at this machine. */
function templatedNginx (port: number, accessLog: string): string {
  let conf = readText('deploy/nginx/streaming-service.conf')
  const upstream = (name: string, addresses: string[]) => {
    const block = new RegExp(`(upstream ${name} \\{[^}]*?)^(\\s*)server \\S+([^;]*);`, 'm')
    if (!block.test(conf)) throw new Error(`deploy/nginx: no server line in upstream ${name}`)
    conf = conf.replace(block, (_m, head: string, indent: string, params: string) => head + addresses.map((a) => `${indent}server ${a}${params};`).join('\n'))
  }
  upstream('control_plane', [address(controlPlane)])
  upstream('relays', relays.map(address))
  if ((conf.match(/^\s*listen 80;/gm) ?? []).length !== 1) throw new Error('deploy/nginx: expected one `listen 80;`')
  if (!conf.includes('access_log /var/log/nginx/access.log streaming_service;')) throw new Error('deploy/nginx: expected its access_log with the streaming_service format')
  return conf
    .replace(/^(\s*)listen 80;/m, `$1listen 127.0.0.1:${port};`)
    .replace('access_log /var/log/nginx/access.log streaming_service;', `access_log ${accessLog} streaming_service;`)
}

/** An unprivileged nginx: its own prefix, logs, temp paths and pid file; the site config included as compose mounts it. */
async function startNginx (): Promise<{ url: string, port: number, program: Program, accessLog: () => string }> {
  const dir = scratchDir(t, 'ss-nginx-')
  // Workers drop to nobody when the master runs as root: let them into their temp paths.
  chmodSync(dir, 0o755)
  const port = await freePort()
  writeFileSync(join(dir, 'site.conf'), templatedNginx(port, join(dir, 'site-access.log')))
  writeFileSync(join(dir, 'nginx.conf'), [
    'worker_processes 2;',
    `error_log ${dir}/error.log warn;`,
    'events { worker_connections 512; }',
    'http {',
    `  access_log ${dir}/access.log;`,
    `  client_body_temp_path ${dir}/client_body; proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
    `  include ${dir}/site.conf;`,
    '}',
  ].join('\n'))
  const nginx = startProgram(t, nginxBin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid;`])
  const url = `http://127.0.0.1:${port}`
  await waitFor('nginx to answer /lb-health', async () => {
    if (nginx.child.exitCode !== null) throw new Error(`nginx exited: ${nginx.output()}`)
    return (await fetch(`${url}/lb-health`)).status === 200
  }, 10_000).catch((err: Error) => { throw new Error(`${err.message}; nginx: ${nginx.output()}`) })
  return { url, port, program: nginx, accessLog: () => readFileSync(join(dir, 'site-access.log'), 'utf8') }
}

/** Prometheus with `config` (a rewritten deploy/prometheus file) on a free port and a fresh TSDB. */
async function startPrometheus (config: any, files: Record<string, unknown> = {}): Promise<{ url: string, query (promql: string): Promise<any[]>, api (path: string): Promise<any>, program: Program }> {
  const dir = scratchDir(t, 'ss-prometheus-')
  const port = await freePort()
  config.global = { ...config.global, scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' }
  config.rule_files = (config.rule_files ?? []).map((file: string) => join(REPO_ROOT, 'deploy/prometheus', file))
  for (const job of config.scrape_configs) {
    for (const group of job.static_configs ?? []) group.targets = group.targets.map((target: string) => target === 'localhost:9090' ? `127.0.0.1:${port}` : target)
  }
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), JSON.stringify(content))
  writeFileSync(join(dir, 'prometheus.yml'), stringify(config))
  mkdirSync(join(dir, 'data'))
  const prometheus = startProgram(t, prometheusBin, [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`,
  ], { cwd: dir })
  const url = `http://127.0.0.1:${port}`
  await waitFor('Prometheus to be ready', async () => {
    if (prometheus.child.exitCode !== null) throw new Error(`prometheus exited: ${prometheus.output()}`)
    return (await fetch(`${url}/-/ready`)).status === 200
  }, 20_000).catch((err: Error) => { throw new Error(`${err.message}; prometheus: ${prometheus.output().slice(-4000)}`) })
  const api = async (path: string) => {
    const body = await (await fetch(`${url}/api/v1/${path}`)).json() as { status: string, data: any, error?: string }
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error}`)
    return body.data
  }
  return { url, api, query: async (promql: string) => (await api(`query?query=${encodeURIComponent(promql)}`)).result, program: prometheus }
}

/** Metric names a process exports, from the # TYPE lines of its /metrics (histograms with their series). */
async function exported (service: ServiceProcess): Promise<Set<string>> {
  const text = await (await fetch(`${service.url}/metrics`)).text()
  const names = new Set<string>()
  for (const [, name, type] of text.matchAll(/^# TYPE (\w+) (\w+)$/gm)) {
    names.add(name!)
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name! + suffix)
  }
  return names
}

/** Metric names used by PromQL expressions (identifiers that are not functions, keywords, labels or durations). */
function metricNames (expr: string): string[] {
  const cleaned = expr.replace(/\{[^}]*\}/g, '').replace(/"[^"]*"/g, '').replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
  const reserved = new Set(['sum', 'min', 'max', 'avg', 'count', 'rate', 'increase', 'changes', 'absent', 'histogram_quantile', 'vector', 'or', 'and', 'unless', 'bool', 'offset'])
  return [...cleaned.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b/g)].map((m) => m[1]!)
    .filter((word) => !reserved.has(word) && !/^\d/.test(word) && !/^(__)/.test(word))
}

t.test('nginx (deploy/nginx) in front of control plane + 3 relays: session, console, publisher and operators on different relays, frames end to end', async (t) => {
  const lb = await startNginx()

  const clientId = randomUUID()
  const created = await fetch(`${lb.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: clientId }) })
  t.equal(created.status, 201, 'POST /sessions through the balancer')
  const session = await created.json() as { session_id: string, stream_key: string, ws_url: string }
  t.equal(session.ws_url, `ws://127.0.0.1:${lb.port}/ws/stream/${session.session_id}/${clientId}`, 'ws_url points at the balancer (X-Forwarded-Host)')

  const page = await fetch(`${lb.url}/`)
  t.equal(page.status, 200, 'the console through the balancer')
  t.match(page.headers.get('content-type'), /^text\/html/)
  const html = await page.text()
  t.match(html, /<html/i)
  for (const asset of [...html.matchAll(/(?:src|href)="\/?(console\/[^"]+)"/g)].map((m) => m[1]!)) {
    t.equal((await fetch(`${lb.url}/${asset}`)).status, 200, `console asset /${asset}`)
  }

  // Streams: least connections across relays, so each socket lands on its own relay.
  const publisher = await connected(t, `${session.ws_url}?stream_key=${session.stream_key}`)
  const operators: TestSocket[] = []
  for (const user of ['op-1', 'op-2']) {
    operators.push(await connected(t, session.ws_url.replace(clientId, user)))
  }
  await waitFor('one connection on each relay', async () => {
    const counts = await Promise.all(relays.map(async (relay) => await metric(relay, 'relay_connections')))
    return counts.every((count) => count === 1)
  }, 10_000)
  const publishers = await Promise.all(relays.map(async (relay) => await metric(relay, 'relay_connections', { role: 'publisher' })))
  t.same([...publishers].sort(), [0, 0, 1], 'the publisher on one relay, the two operators on the two others')

  await primed(publisher, operators)
  const sent: Array<{ data: Buffer, binary: boolean }> = []
  for (let i = 0; i < 50; i++) {
    const binary = i % 5 !== 0
    const data = binary ? randomBytes(1 + Math.floor(Math.random() * 32 * 1024)) : Buffer.from(`text ${i}`)
    sent.push({ data, binary })
    await publisher.send(binary ? data : data.toString())
  }
  for (const [i, operator] of operators.entries()) {
    const received = await operator.waitForMessages(sent.length, 10_000)
    t.equal(received.findIndex((m, k) => m.binary !== sent[k]!.binary || !m.data.equals(sent[k]!.data)), -1,
      `operator ${i + 1} (another relay than the publisher's) got all ${sent.length} messages byte for byte, in order`)
  }
  t.ok(await metric(relays[publishers.indexOf(1)]!, 'relay_messages_total', { direction: 'in' }) >= sent.length, 'the publisher\'s relay received them')

  await waitFor('the session active with its publisher online', async () => {
    const body = await (await fetch(`${lb.url}/sessions/${session.session_id}`)).json() as { status: string, publisher_online: boolean }
    return body.status === 'active' && body.publisher_online
  })
  t.match(await (await fetch(`${lb.url}/sessions/${session.session_id}`)).json(), { status: 'active', publisher_online: true, operators_count: 2 })

  // Only the public routes are published.
  t.equal((await fetch(`${lb.url}/metrics`)).status, 404, 'the nodes\' /metrics is not published')
  t.equal((await fetch(`${lb.url}/ready`)).status, 404, 'nor /ready')
  t.equal((await fetch(`${lb.url}/lb-health`)).status, 200)

  const deleted = await fetch(`${lb.url}/sessions/${session.session_id}`, { method: 'DELETE' })
  t.equal(deleted.status, 204, 'DELETE through the balancer')
  for (const socket of [publisher, ...operators]) t.equal((await socket.closed).code, 4410, 'every socket, on every relay, closed with 4410')

  t.equal(lb.program.child.exitCode, null, 'nginx still running')
  await lb.program.stop()
  const accessLog = lb.accessLog()
  t.match(accessLog, `"GET /ws/stream/${session.session_id}/${clientId} HTTP/1.1" 101`, 'the access log has the requests...')
  t.notOk(accessLog.includes(session.stream_key) || accessLog.includes('stream_key='), '...and no query string: no stream key')
})

t.test('Prometheus (deploy/prometheus): every process up, relay metrics and rules loaded, dashboard queries valid, a killed relay raises RelayDown', async (t) => {
  const config = readYaml('deploy/prometheus/prometheus.yml')
  const jobs = Object.fromEntries(config.scrape_configs.map((job: any) => [job.job_name, job]))
  t.same(Object.keys(jobs).sort(), ['control-plane', 'prometheus', 'relay'])
  // The same jobs, their targets pointed at this machine's processes.
  jobs['control-plane'].static_configs = [{ targets: [address(controlPlane)] }]
  delete jobs.relay.dns_sd_configs
  jobs.relay.static_configs = [{ targets: relays.map(address) }]
  const prometheus = await startPrometheus(config)

  await waitFor('every target up == 1', async () => {
    const up = await prometheus.query('up')
    return up.length === 5 && up.every((series) => series.value[1] === '1')
  }, 20_000)
  const up = await prometheus.query('up')
  t.same(up.map((s) => `${s.metric.job} ${s.metric.instance}`).sort(),
    [`control-plane ${address(controlPlane)}`, `prometheus ${new URL(prometheus.url).host}`, ...relays.map((r) => `relay ${address(r)}`)].sort(),
    'targets: the control plane, every relay, Prometheus itself')

  // The relays' own metrics, through Prometheus's HTTP API.
  const ins = await prometheus.query('sum by (instance) (relay_messages_total{job="relay", direction="in"})')
  t.ok(ins.some((s) => Number(s.value[1]) >= 50), 'relay_messages_total{direction="in"}: the stream of the nginx test')
  const remote = await prometheus.query('sum(relay_latency_seconds_count{job="relay", path="remote"})')
  t.ok(Number(remote[0]?.value[1]) >= 100, 'relay_latency_seconds{path="remote"}: frames crossed the backplane to two relays')
  const connections = await prometheus.query('relay_connections{job="relay"}')
  t.same([...new Set(connections.map((s) => s.metric.instance))].sort(), relays.map(address).sort(), 'relay_connections from every relay')
  const ready = await prometheus.query('min by (job, instance) (readiness_check)')
  t.equal(ready.length, 4, 'readiness_check from the control plane and every relay')
  t.ok(ready.every((s) => s.value[1] === '1'), 'all ready')
  const sessions = await prometheus.query('sessions{job="control-plane"}')
  t.same(sessions.map((s) => s.metric.status).sort(), ['active', 'finished', 'waiting'], 'sessions{status} from the control plane')

  // Alert rules loaded and evaluating without errors.
  await waitFor('every rule evaluated', async () => {
    const { groups } = await prometheus.api('rules')
    return groups.length > 0 && groups.every((g: any) => g.rules.every((r: any) => r.health === 'ok'))
  }, 10_000)
  const { groups } = await prometheus.api('rules')
  t.equal(groups[0].rules.length, 12, 'the 12 alert rules of alerts.yml')
  // ControlPlaneDown and NoRelayUp (absent()) may go pending at the first evaluation, before the first scrape.
  await waitFor('no alert on a healthy cluster', async () => (await prometheus.api('alerts')).alerts.length === 0, 10_000)
  t.pass('no alert on a healthy cluster')

  // Every dashboard query runs, and dashboards and alerts use only metrics the processes export.
  const dashboard = JSON.parse(readText('deploy/grafana/dashboards/streaming-service.json'))
  const exprs: string[] = dashboard.panels.flatMap((panel: any) => (panel.targets ?? []).map((target: any) => target.expr))
  t.ok(exprs.length >= 20, `${exprs.length} dashboard queries`)
  const names = new Set(['up', ...await exported(controlPlane), ...await exported(relays[0]!)])
  const alertExprs: string[] = groups[0].rules.map((rule: any) => rule.query)
  for (const expr of [...exprs, ...alertExprs]) {
    for (const name of metricNames(expr)) t.ok(names.has(name), `${name} is exported by the service (${expr.slice(0, 60)}…)`)
  }
  for (const expr of exprs) {
    const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*')
    await t.resolves(prometheus.query(promql), `dashboard query runs: ${promql.slice(0, 80)}`)
  }
  // rate() needs two scrapes of the histogram.
  await waitFor('the latency heatmap to have buckets', async () =>
    (await prometheus.query('sum by (le) (rate(relay_latency_seconds_bucket{job="relay", instance=~".*"}[1m]))')).length > 1, 10_000)
  t.pass('the latency heatmap has buckets')

  // A relay killed: Prometheus sees it down and RelayDown goes pending (it fires after 1 m).
  const victim = relays[2]!
  await victim.stop('SIGKILL')
  await waitFor('RelayDown pending for the killed relay', async () => {
    const { alerts } = await prometheus.api('alerts')
    return alerts.some((a: any) => a.labels.alertname === 'RelayDown' && a.labels.instance === address(victim))
  }, 15_000)
  const { alerts } = await prometheus.api('alerts')
  t.same(alerts.map((a: any) => `${a.labels.alertname} ${a.labels.instance} ${a.state}`), [`RelayDown ${address(victim)} pending`], 'RelayDown for that relay only')
  t.equal((await prometheus.query(`up{instance="${address(victim)}"}`))[0].value[1], '0')
  await prometheus.program.stop()
})

t.test('Prometheus in Kubernetes (deploy/prometheus/kubernetes.yml): pods found by the annotations of deploy/k8s, job = component, instance = pod', async (t) => {
  // kubernetes_sd_configs swapped for a file listing the pods as the Kubernetes
  // discovery would: their labels and annotations taken from deploy/k8s, the
  // address podIP:containerPort; the relabeling under test is kubernetes.yml's own.
  const config = readYaml('deploy/prometheus/kubernetes.yml')
  t.equal(config.scrape_configs.length, 1)
  const job = config.scrape_configs[0]
  t.same(job.kubernetes_sd_configs, [{ role: 'pod' }])
  delete job.kubernetes_sd_configs
  job.file_sd_configs = [{ files: ['pods.json'], refresh_interval: '1s' }]

  const workloads = [...readYamlDocuments('deploy/k8s/control-plane.yaml'), ...readYamlDocuments('deploy/k8s/relay.yaml'), ...readYamlDocuments('deploy/k8s/migrate-job.yaml')]
  const template = (name: string) => workloads.find((doc: any) => doc.metadata.name === name).spec.template
  const meta = (value: string) => value.replace(/[^a-zA-Z0-9_]/g, '_')
  const pod = (name: string, podTemplate: any, service: ServiceProcess | undefined, port: number) => {
    const labels: Record<string, string> = {
      __meta_kubernetes_namespace: 'streaming',
      __meta_kubernetes_pod_name: name,
    }
    for (const [key, value] of Object.entries<string>(podTemplate.metadata.labels ?? {})) labels[`__meta_kubernetes_pod_label_${meta(key)}`] = value
    for (const [key, value] of Object.entries<string>(podTemplate.metadata.annotations ?? {})) {
      // The annotated port is containerPort (8090) in the cluster; here it is the process's own port.
      labels[`__meta_kubernetes_pod_annotation_${meta(key)}`] = key === 'prometheus.io/port' && service !== undefined ? String(service.port) : value
    }
    return { targets: [`127.0.0.1:${port}`], labels }
  }
  const controlPlaneTemplate = template('streaming-service-control-plane')
  const relayTemplate = template('streaming-service-relay')
  t.equal(relayTemplate.metadata.annotations['prometheus.io/port'], String(relayTemplate.spec.containers[0].ports[0].containerPort), 'the annotated port is the containerPort')
  const livingRelays = relays.filter((relay) => relay.child.exitCode === null && relay.child.signalCode === null)
  const pods = [
    pod('streaming-service-control-plane-7d9f-abcde', controlPlaneTemplate, controlPlane, controlPlane.port),
    ...livingRelays.map((relay, i) => pod(`streaming-service-relay-5c6b-${i}`, relayTemplate, relay, relay.port)),
    // Not scraped: the migration Job's pod has no scrape annotation.
    pod('streaming-service-migrate-xyz12', template('streaming-service-migrate'), undefined, await freePort()),
  ]
  const prometheus = await startPrometheus(config, { 'pods.json': pods })

  await waitFor('the annotated pods up', async () => {
    const up = await prometheus.query('up')
    return up.length === 1 + livingRelays.length && up.every((series) => series.value[1] === '1')
  }, 20_000)
  const up = await prometheus.query('up')
  t.same(up.map((s) => `${s.metric.job} ${s.metric.instance} ${s.metric.namespace}`).sort(), [
    'control-plane streaming-service-control-plane-7d9f-abcde streaming',
    ...livingRelays.map((_r, i) => `relay streaming-service-relay-5c6b-${i} streaming`),
  ].sort(), 'job from app.kubernetes.io/component, instance = pod name; the migration pod is not scraped')
  const connections = await prometheus.query('count by (instance) (relay_connections{job="relay"})')
  t.equal(connections.length, livingRelays.length, 'relay metrics under job="relay", as alerts.yml and the dashboard expect')
  await waitFor('alert rules evaluated', async () => {
    const { groups } = await prometheus.api('rules')
    return groups.length === 1 && groups[0].rules.every((r: any) => r.health === 'ok')
  }, 10_000)
  // NoRelayUp may go pending at the first evaluation, before the first scrape.
  await waitFor('no alert on the healthy pods', async () => (await prometheus.api('alerts')).alerts.length === 0, 10_000)
  t.pass('no alert on the healthy pods')
  await prometheus.program.stop()
})
