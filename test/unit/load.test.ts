import {activeRequestsIn, defaultQuery, expandQuery} from "../../operator/src/autoscaler/load.js";

describe("autoscaler load queries", () => {
  const pods = [
    {name: "chat-6df7-a1", url: "http://10.0.0.1:8000"},
    {name: "chat-6df7-b2", url: "http://10.0.0.2:8000"}
  ];

  it("selects exactly the service's ready pods by namespace and pod name", () => {
    expect(defaultQuery("team", pods)).toBe('sum by (pod) (llm_active_requests{namespace="team",pod=~"chat-6df7-a1|chat-6df7-b2"})');
    expect(defaultQuery("team", [{name: "a.b", url: ""}])).toContain('pod=~"a\\\\.b"');
  });

  it("fills {{namespace}}, {{name}} and {{pods}} into a custom query", () => {
    expect(expandQuery('sum(my_inflight{ns="{{namespace}}",app="{{name}}",pod=~"{{pods}}"})', "team", "chat", pods)).toBe('sum(my_inflight{ns="team",app="chat",pod=~"chat-6df7-a1|chat-6df7-b2"})');
  });

  it("reads llm_active_requests from a pod's exposition, and nothing from a similar name", () => {
    const text = ["# HELP llm_active_requests In-flight", "# TYPE llm_active_requests gauge", "llm_active_requests 3", "llm_active_requests_other 9", 'llm_active_requests{slot="x"} 2'].join("\n");
    expect(activeRequestsIn(text)).toBe(5);
    expect(activeRequestsIn("llm_requests_total 4\n")).toBeUndefined();
  });
});
