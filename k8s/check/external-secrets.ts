// Secrets the manifests reference but never contain: created with kubectl in
// each namespace before the first apply (k8s/README.md), or, in the dev
// overlay, generated with dev-only values. Any other Secret a workload
// references must be in the rendering.
export const EXTERNAL_SECRETS: Record<string, { keys: string[] | "any"; what: string }> = {
  "redis-url": { keys: ["url"], what: "REDIS_URL of every service" },
  "nats-url": { keys: ["url"], what: "NATS_URL of every service" },
  "database-url": { keys: ["url"], what: "DATABASE_URL: the seckill role and database" },
  "database-admin-url": { keys: ["url"], what: "DATABASE_ADMIN_URL: a superuser, only for migrate --create-database" },
  "postgres-superuser": { keys: ["password"], what: "the in-cluster Postgres superuser's password" },
  "purchase-token-keys": { keys: "any", what: "the gateway's signing keys, <kid>.pem files" },
  "envoy-tls": { keys: ["tls.crt", "tls.key"], what: "Envoy's listener certificate and key (type kubernetes.io/tls)" },
  "envoy-client-ca": { keys: ["ca.crt"], what: "the CA that signs the certificates of the clients allowed at the edge (mutual TLS)" },
};
