"""Helpers of the libvirt driver unit tests."""

NODE_XML = """<?xml version="1.0"?>
<node>
  <cpu>
    <nodes>1</nodes><sockets>1</sockets><cores>{cores}</cores><threads>1</threads>
    <active>{cpus}</active><mhz>2400</mhz><model>x86_64</model>
  </cpu>
  <memory>{memory_kib}</memory>
</node>
"""



def write_node(path, cpus=8, memory_mb=16384):
    with open(path, 'w') as f:
        f.write(NODE_XML.format(cores=cpus, cpus=cpus, memory_kib=memory_mb * 1024))
    return 'test://' + str(path)
