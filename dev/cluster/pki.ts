import {execFileSync} from "node:child_process";
import {mkdirSync, writeFileSync} from "node:fs";
import {join} from "node:path";

/** A signed certificate and its key, as PEM files. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface Pki {
  readonly dir: string;
  readonly ca: CertFiles;
  readonly apiserver: CertFiles;
  readonly admin: CertFiles;
  readonly controllerManager: CertFiles;
  readonly scheduler: CertFiles;
  readonly kwok: CertFiles;
  /** The API server's identity towards kubelets (logs, exec): a real node's kubelet checks it. */
  readonly kubeletClient: CertFiles;
  /** Service-account token signing key pair. */
  readonly serviceAccount: {readonly private: string; readonly public: string};
}

const openssl = (args: string[]) => execFileSync("openssl", args, {stdio: ["ignore", "ignore", "pipe"]});

function ecKey(path: string): void {
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path]);
}

const CLIENT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";
const serverExtensions = (sans: readonly string[]) => `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(",")}\n`;

/**
 * Signs a certificate with the CA in `dir` (ca.crt, ca.key): a client certificate whose
 * subject is the identity RBAC sees (CN = user, O = group), or a serving one for `sans`.
 */
export function signCertificate(dir: string, name: string, subject: string, usage: "client" | "server", sans: readonly string[] = []): CertFiles {
  const p = (file: string) => join(dir, file);
  ecKey(p(`${name}.key`));
  openssl(["req", "-new", "-key", p(`${name}.key`), "-subj", subject, "-out", p(`${name}.csr`)]);
  writeFileSync(p(`${name}.ext`), usage === "client" ? CLIENT : serverExtensions(sans));
  openssl(["x509", "-req", "-in", p(`${name}.csr`), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "3650", "-extfile", p(`${name}.ext`), "-out", p(`${name}.crt`)]);
  return {cert: p(`${name}.crt`), key: p(`${name}.key`)};
}

/**
 * A private CA and the certificates a real control plane uses: the API server's serving
 * certificate (for loopback, the `kubernetes` Service and `extraSans`) and the components'
 * client certificates. EC P-256 keys keep generation fast; valid 10 years.
 */
export function createPki(dir: string, extraSans: readonly string[] = []): Pki {
  mkdirSync(dir, {recursive: true});
  const p = (name: string) => join(dir, name);
  ecKey(p("ca.key"));
  openssl(["req", "-x509", "-new", "-key", p("ca.key"), "-subj", "/CN=paddock-test-ca", "-days", "3650", "-out", p("ca.crt")]);
  const sans = [
    "IP:127.0.0.1",
    "IP:10.96.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    ...extraSans
  ];
  const client = (name: string, subject: string) => signCertificate(dir, name, subject, "client");
  ecKey(p("sa.key"));
  openssl(["pkey", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub")]);
  return {
    dir,
    ca: {cert: p("ca.crt"), key: p("ca.key")},
    apiserver: signCertificate(dir, "apiserver", "/CN=kube-apiserver", "server", sans),
    admin: client("admin", "/O=system:masters/CN=paddock-admin"),
    controllerManager: client("controller-manager", "/CN=system:kube-controller-manager"),
    scheduler: client("scheduler", "/CN=system:kube-scheduler"),
    // KWOK plays every kubelet (node status, pod status for all fake nodes): cluster-admin.
    kwok: client("kwok", "/O=system:masters/CN=kwok-controller"),
    kubeletClient: client("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client"),
    serviceAccount: {private: p("sa.key"), public: p("sa.pub")}
  };
}
