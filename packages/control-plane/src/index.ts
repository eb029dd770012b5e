export { buildControlPlane, registerControlPlane, type ControlPlaneOptions } from './app.js'
export { sessionRoutes, type SessionRoutesOptions } from './routes/sessions.js'
export { wsBaseUrl } from './ws-url.js'
export { startReconciler, type ReconcilerOptions } from './reconciler.js'
