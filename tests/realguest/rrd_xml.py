"""XenServer's rrd_updates XML read the way its Java clients read it (CloudStack's XenServer
resource, the seed's client): the <meta> block first (start, step, end, rows, columns and the
<legend> entries `CF:vm|host:<uuid or name>:<data source>`), then the <data> rows, each a <t> and
one <v> per legend entry, newest first. A reply that breaks any of that fails here, naming what."""
import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass
class RrdUpdates:
    start: int
    step: int
    end: int
    legend: list  # ["AVERAGE:vm:<uuid>:cpu0", ...]
    rows: list  # [(t, [float or None per legend entry])], newest first

    def series(self, cf, kind, ident, name):
        """[(t, value)] of one legend entry, newest first; unknown values (NaN) left out."""
        column = self.legend.index(f"{cf}:{kind}:{ident}:{name}")
        return [(t, values[column]) for t, values in self.rows if values[column] is not None]

    def names(self, cf, kind, ident):
        """The data source names the legend has for one VM or host."""
        prefix = f"{cf}:{kind}:{ident}:"
        return [entry[len(prefix):] for entry in self.legend if entry.startswith(prefix)]


def _number(text):
    value = float(text)
    return None if value != value else value  # NaN: rrdtool's unknown


def parse_rrd_updates(text):
    root = ET.fromstring(text.encode())
    assert root.tag == "xport", f"root element {root.tag}, not xport"
    meta, data = root.find("meta"), root.find("data")
    assert meta is not None and data is not None, "no <meta> or no <data>"
    legend = [entry.text for entry in meta.findall("legend/entry")]
    for entry in legend:
        cf, kind, _ident, name = entry.split(":", 3)  # a uuid has no colon; a legend entry has four parts
        assert cf in ("AVERAGE", "MIN", "MAX") and kind in ("vm", "host") and name, entry
    rows = []
    for row in data.findall("row"):
        values = [_number(v.text) for v in row.findall("v")]
        assert len(values) == len(legend), f"a row of {len(values)} values for {len(legend)} legend entries"
        rows.append((int(row.find("t").text), values))
    assert int(meta.find("rows").text) == len(rows), "<rows> is not the number of rows"
    assert int(meta.find("columns").text) == len(legend), "<columns> is not the number of legend entries"
    times = [t for t, _values in rows]
    assert times == sorted(times, reverse=True) and len(set(times)) == len(times), f"rows not newest first: {times}"
    return RrdUpdates(int(meta.find("start").text), int(meta.find("step").text), int(meta.find("end").text),
                      legend, rows)
