// Test inputs made on the spot: an ASCII STL box and G-code whose moves take real time.

/** An axis-aligned box as ASCII STL (12 triangles), sitting on z = 0. */
export function boxStl(x, y, z) {
  const v = (i) => [i & 1 ? x : 0, i & 2 ? y : 0, i & 4 ? z : 0];
  // Each face as two triangles, counter-clockwise seen from outside.
  const faces = [
    [0, 2, 3, 1, [0, 0, -1]], [4, 5, 7, 6, [0, 0, 1]],
    [0, 1, 5, 4, [0, -1, 0]], [2, 6, 7, 3, [0, 1, 0]],
    [0, 4, 6, 2, [-1, 0, 0]], [1, 3, 7, 5, [1, 0, 0]],
  ];
  let out = "solid box\n";
  for (const [a, b, c, d, n] of faces) {
    for (const tri of [[a, b, c], [a, c, d]]) {
      out += `facet normal ${n.join(" ")}\n outer loop\n`;
      for (const i of tri) out += `  vertex ${v(i).join(" ")}\n`;
      out += " endloop\nendfacet\n";
    }
  }
  return out + "endsolid box\n";
}

/** G-code that draws a square back and forth slowly: about `seconds` of moves at 10 mm/s. */
export function slowGcode(seconds) {
  const lines = ["; slow test print", "G28", "G90", "M83", "G1 Z0.3 F600"];
  const moves = Math.ceil(seconds / 2);
  for (let i = 0; i < moves; i++) lines.push(`G1 X${i % 2 ? 20 : 40} Y${20 + (i % 7)} E0.5 F600`);
  lines.push("M84");
  return lines.join("\n") + "\n";
}

/** The same box as Wavefront OBJ (8 vertices, 12 triangles). */
export function boxObj(x, y, z) {
  const v = [];
  for (let i = 0; i < 8; i++) v.push(`v ${i & 1 ? x : 0} ${i & 2 ? y : 0} ${i & 4 ? z : 0}`);
  const quads = [[1, 3, 4, 2], [5, 6, 8, 7], [1, 2, 6, 5], [3, 7, 8, 4], [1, 5, 7, 3], [2, 4, 8, 6]];
  const f = quads.flatMap(([a, b, c, d]) => [`f ${a} ${b} ${c}`, `f ${a} ${c} ${d}`]);
  return ["# box", ...v, ...f, ""].join("\n");
}
