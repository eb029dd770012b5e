// A throwaway TCP forwarder for fault tests: `node tcp-proxy.mjs <listenPort> <targetHost> <targetPort>`.
// Prints "listening <port>" once bound. Killing it (by PID) is "the database went away".
import net from 'node:net'

const [listenPort, targetHost, targetPort] = process.argv.slice(2)
const server = net.createServer((client) => {
  const upstream = net.connect(Number(targetPort), targetHost)
  client.pipe(upstream).pipe(client)
  const close = () => { client.destroy(); upstream.destroy() }
  client.on('error', close)
  upstream.on('error', close)
  client.on('close', close)
  upstream.on('close', close)
})
server.listen(Number(listenPort), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`)
})
