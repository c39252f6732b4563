// The gateway's purchase-token keys: a directory of `<kid>.pem` files (PKCS#8
// P-256 private keys; a Kubernetes Secret mount in production). Every key in
// the directory is published in the JWKS; the newest one whose file time has
// come signs. Rotation: add a new key file (the old one stays published until
// the tokens it signed have expired, then remove it). A key file whose
// modification time is in the future is published at once but signs only from
// that time on, so verifiers that cache the JWKS (Envoy, for cache_duration)
// can learn it before the first token it signs. An empty or missing directory
// gets a first key (dev).
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { ROOT } from "../../services/common/assets.js";
import { errorMessage } from "../../services/common/error-message.js";
import { ulid } from "../../services/common/ids.js";
import type { PublicJwk } from "../../services/common/jwt.js";
import type { Logger } from "../../services/common/log.js";
import type { SigningKey } from "./jwt.js";

const KID_RE = /^[A-Za-z0-9_-]{1,64}$/;

interface LoadedKey extends SigningKey {
  /** File modification time: the newest (whose time has come) signs. */
  mtimeMs: number;
  jwk: PublicJwk;
}

export interface KeyRing {
  /** The key that signs now: the newest key whose file time has passed. */
  signing(): SigningKey;
  /** Every key in the directory, as the JWKS publishes them. */
  jwks(): { keys: PublicJwk[] };
  /** Reads the directory again (keys added or removed). On an error the previous keys stay. */
  reload(): Promise<void>;
}

/** The directory as configured: relative paths are from the repository root. */
export const keysDirOf = (configured: string): string => resolve(ROOT, configured);

export function publicJwkOf(kid: string, publicKey: KeyObject): PublicJwk {
  const { x, y } = publicKey.export({ format: "jwk" });
  return { kty: "EC", crv: "P-256", x: x!, y: y!, kid, alg: "ES256", use: "sig" };
}

function parseKey(kid: string, pem: string): KeyObject {
  const privateKey = createPrivateKey({ key: pem, format: "pem" });
  if (privateKey.asymmetricKeyType !== "ec" || privateKey.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error(`key ${kid}: expected an EC P-256 private key`);
  }
  return privateKey;
}

/** Writes a new P-256 key as `<kid>.pem` (mode 0600) and returns its kid. */
export async function createKeyFile(dir: string, kid: string = ulid().toLowerCase()): Promise<string> {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  // Only the key directory itself is private: parents made here get the usual
  // mode (a 0700 .local/ would lock the private Postgres's user out of .local/).
  await mkdir(dirname(dir), { recursive: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, `${kid}.pem`), privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600, flag: "wx" });
  return kid;
}

async function readKeys(dir: string): Promise<LoadedKey[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith(".pem")).sort();
  const keys: LoadedKey[] = [];
  for (const name of names) {
    const kid = name.slice(0, -".pem".length);
    if (!KID_RE.test(kid)) throw new Error(`key file ${name}: the name (the kid) must be 1 to 64 characters of [A-Za-z0-9_-]`);
    const path = join(dir, name);
    const [pem, info] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    const privateKey = parseKey(kid, pem);
    keys.push({ kid, privateKey, mtimeMs: info.mtimeMs, jwk: publicJwkOf(kid, createPublicKey(privateKey)) });
  }
  return keys;
}

export async function loadKeyRing(opts: { dir: string; log: Logger; nowMs?: () => number; createIfEmpty?: boolean }): Promise<KeyRing> {
  const { dir, log } = opts;
  const nowMs = opts.nowMs ?? Date.now;
  const exists = await stat(dir).then(
    () => true,
    (error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? false : Promise.reject(error)),
  );
  if (!exists || (await readKeys(dir)).length === 0) {
    if (opts.createIfEmpty === false) throw new Error(`no purchase-token keys (<kid>.pem) in ${dir}`);
    const kid = await createKeyFile(dir);
    log.info("created a purchase-token signing key", { dir, kid });
  }
  let keys = await readKeys(dir);

  return {
    signing() {
      const now = nowMs();
      const ready = keys.filter((k) => k.mtimeMs <= now);
      // Newest file first; the same time falls back to the greater kid. Before
      // any key's time has come (clocks set oddly), the oldest key signs.
      const pool = ready.length > 0 ? ready : [keys.reduce((a, b) => (b.mtimeMs < a.mtimeMs ? b : a))];
      return pool.reduce((a, b) => (b.mtimeMs > a.mtimeMs || (b.mtimeMs === a.mtimeMs && b.kid > a.kid) ? b : a));
    },
    jwks: () => ({ keys: keys.map((k) => k.jwk) }),
    async reload() {
      try {
        const next = await readKeys(dir);
        if (next.length === 0) throw new Error(`no keys left in ${dir}`);
        const before = new Set(keys.map((k) => k.kid));
        const added = next.filter((k) => !before.has(k.kid)).map((k) => k.kid);
        const removed = keys.filter((k) => !next.some((n) => n.kid === k.kid)).map((k) => k.kid);
        if (added.length > 0 || removed.length > 0) log.info("purchase-token keys changed", { added, removed });
        keys = next;
      } catch (error) {
        log.warn("could not reload the purchase-token keys; keeping the previous ones", { dir, err: errorMessage(error) });
      }
    },
  };
}
