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
  /** Service-account token signing key pair. */
  readonly serviceAccount: {readonly private: string; readonly public: string};
}

const openssl = (args: string[]) => execFileSync("openssl", args, {stdio: ["ignore", "ignore", "pipe"]});

function ecKey(path: string): void {
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path]);
}

/**
 * A private CA and the certificates a real control plane uses: the API server's serving
 * certificate and client certificates whose subject is the identity RBAC sees
 * (CN = user, O = group). EC P-256 keys keep generation fast; valid 10 years.
 */
export function createPki(dir: string): Pki {
  mkdirSync(dir, {recursive: true});
  const p = (name: string) => join(dir, name);
  ecKey(p("ca.key"));
  openssl(["req", "-x509", "-new", "-key", p("ca.key"), "-subj", "/CN=paddock-test-ca", "-days", "3650", "-out", p("ca.crt")]);
  const ca = {cert: p("ca.crt"), key: p("ca.key")};

  const sign = (name: string, subject: string, extensions: string): CertFiles => {
    ecKey(p(`${name}.key`));
    openssl(["req", "-new", "-key", p(`${name}.key`), "-subj", subject, "-out", p(`${name}.csr`)]);
    writeFileSync(p(`${name}.ext`), extensions);
    openssl(["x509", "-req", "-in", p(`${name}.csr`), "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-days", "3650", "-extfile", p(`${name}.ext`), "-out", p(`${name}.crt`)]);
    return {cert: p(`${name}.crt`), key: p(`${name}.key`)};
  };
  const client = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n";
  const sans = [
    "IP:127.0.0.1",
    "IP:10.96.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local"
  ];
  const server = `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(",")}\n`;

  ecKey(p("sa.key"));
  openssl(["pkey", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub")]);
  return {
    dir,
    ca,
    apiserver: sign("apiserver", "/CN=kube-apiserver", server),
    admin: sign("admin", "/O=system:masters/CN=paddock-admin", client),
    controllerManager: sign("controller-manager", "/CN=system:kube-controller-manager", client),
    scheduler: sign("scheduler", "/CN=system:kube-scheduler", client),
    // KWOK plays every kubelet (node status, pod status for all fake nodes): cluster-admin.
    kwok: sign("kwok", "/O=system:masters/CN=kwok-controller", client),
    serviceAccount: {private: p("sa.key"), public: p("sa.pub")}
  };
}
