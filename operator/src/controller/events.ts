import type {LlmService} from "../api/llmservice.js";
import type {KubeClient} from "../kube/kube-client.js";

export interface EventSpec {
  type: "Normal" | "Warning";
  reason: string;
  action: string;
  note: string;
}

export interface EventRecorder {
  record(svc: LlmService, event: EventSpec): Promise<void>;
}

/**
 * Kubernetes Events (events.k8s.io/v1) about an LlmService, as `kubectl describe` shows
 * them. Best effort: a failed event never fails a reconcile.
 */
export class KubeEventRecorder implements EventRecorder {
  constructor(
    private readonly kube: KubeClient,
    /** This operator instance (pod name), as the event's reportingInstance. */
    private readonly instance: string,
    private readonly onError: (error: unknown) => void = () => {},
    private readonly now: () => Date = () => new Date()
  ) {}

  async record(svc: LlmService, event: EventSpec): Promise<void> {
    const now = this.now();
    // events.k8s.io/v1 Event; its eventTime is a MicroTime, which the client's model types as Date.
    const object = {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: {name: `${svc.metadata.name}.${now.getTime().toString(16)}${Math.random().toString(16).slice(2, 6)}`, namespace: svc.metadata.namespace},
      // MicroTime: RFC 3339 with microseconds.
      eventTime: now.toISOString().replace("Z", "000Z"),
      reportingController: "llm.paddock.dev/operator",
      reportingInstance: this.instance,
      action: event.action,
      reason: event.reason,
      note: event.note.slice(0, 1024),
      type: event.type,
      regarding: {apiVersion: svc.apiVersion, kind: svc.kind, name: svc.metadata.name, namespace: svc.metadata.namespace, uid: svc.metadata.uid}
    };
    try {
      await this.kube.create(object);
    } catch (error) {
      this.onError(error);
    }
  }
}
