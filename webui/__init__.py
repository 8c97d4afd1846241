"""What Tabellion's two web front ends share (the public log explorer and the operator's console): the page
layout, the style sheet, the CBOR and base64url helpers of the in-browser checks, HTML refusal pages and the
server-side drawing of graphs with Graphviz."""
