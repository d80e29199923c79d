import {quantityBytes} from "../../operator/src/desired/quantity.js";

describe("quantityBytes", () => {
  it("reads binary and decimal suffixes and exponents", () => {
    expect(quantityBytes("1Gi")).toBe(2 ** 30);
    expect(quantityBytes("256Mi")).toBe(256 * 2 ** 20);
    expect(quantityBytes("1.5Ki")).toBe(1536);
    expect(quantityBytes("500M")).toBe(5e8);
    expect(quantityBytes("2k")).toBe(2000);
    expect(quantityBytes("1e9")).toBe(1e9);
    expect(quantityBytes("0")).toBe(0);
    expect(quantityBytes("1024")).toBe(1024);
  });

  it("reads sub-byte units as 0 and refuses what is not a quantity", () => {
    expect(quantityBytes("500m")).toBe(0);
    expect(() => quantityBytes("1 GB")).toThrow("not a quantity");
  });
});
