import {StopDetector} from "../../inference-image/src/openai/stop-detector.js";

/** Feeds chunks and returns what a client would have received, plus whether it stopped. */
function run(stops: string[], chunks: string[]): {out: string[]; stopped: boolean} {
  const d = new StopDetector(stops);
  const out: string[] = [];
  for (const c of chunks) {
    out.push(d.push(c));
    if (d.stopped) break;
  }
  out.push(d.flush());
  return {out: out.filter((s) => s !== ""), stopped: d.stopped};
}

describe("StopDetector", () => {
  it("passes text straight through when there are no stops", () => {
    expect(run([], ["Once", " upon"])).toEqual({out: ["Once", " upon"], stopped: false});
  });

  it("keeps the text before a stop that starts inside a chunk", () => {
    expect(run(["Lily"], [" named", " Lily", " and"])).toEqual({out: [" named", " "], stopped: true});
  });

  it("holds back a possible stop prefix until the next chunk decides", () => {
    const d = new StopDetector(["\n\n"]);
    expect(d.push("end\n")).toBe("end");
    expect(d.push("more")).toBe("\nmore");
    expect(d.push("\n")).toBe("");
    expect(d.push("\nrest")).toBe("");
    expect(d.stopped).toBe(true);
  });

  it("finds a stop split over many chunks and picks the earliest of several", () => {
    expect(run(["STOP"], ["a S", "T", "O", "Pb"])).toEqual({out: ["a "], stopped: true});
    expect(run(["c", "ab"], ["xabc"])).toEqual({out: ["x"], stopped: true});
  });

  it("releases held-back text when generation ends without a stop", () => {
    expect(run(["STOP"], ["abc ST"])).toEqual({out: ["abc ", "ST"], stopped: false});
  });
});
