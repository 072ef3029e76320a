// What `migrate` does to a domain's XML, without libvirt: which disks move
// and why the others stay, and the rewrite into an RBD network disk.
import { describe, expect, it } from 'vitest';
import { domainDisks, parseDomainXml, planDisk, rewriteDiskToRbd, serializeDomain } from '../src/libvirt/domain-xml.js';
import { lineDiff } from '../src/libvirt/line-diff.js';
import { monitorsFromMonmap, parseRbdPoolSpec } from '../src/api/rbd.js';

const domain = (disks: string) => `<domain type='qemu'>
  <name>vm1</name>
  <uuid>6f2c3f56-0f6e-4bb2-9d53-0d0f4d0d2a11</uuid>
  <devices>
${disks}
  </devices>
</domain>
`;

const plan = (disks: string) => domainDisks(parseDomainXml(domain(disks), 'test')).map((d) => [d.target, planDisk(d).leftBecause ?? 'moves']);

describe('which disks move', () => {
  it('file and block disks in raw or qcow2 move; every other disk stays, with the reason', () => {
    expect(
      plan(`
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/v/a.raw'/><target dev='vda' bus='virtio'/></disk>
    <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/vg0/b'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/v/c.qcow2'/><target dev='vdc' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/v/x.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/v/s.raw'/><target dev='vdd' bus='virtio'/><shareable/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/v/r.raw'/><target dev='vde' bus='virtio'/><readonly/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/v/t.raw'/><target dev='vdf' bus='virtio'/><transient/></disk>
    <disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' name='rbd/old'/><target dev='vdg' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='vmdk'/><source file='/v/m.vmdk'/><target dev='vdh' bus='virtio'/></disk>
    <disk type='volume' device='disk'><driver name='qemu' type='raw'/><source pool='default' volume='v1'/><target dev='vdi' bus='virtio'/></disk>
    <disk type='file' device='floppy'><target dev='fda' bus='fdc'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><target dev='vdj' bus='virtio'/></disk>`),
    ).toEqual([
      ['vda', 'moves'],
      ['vdb', 'moves'],
      ['vdc', 'moves'],
      ['hdc', 'a cdrom, not a disk'],
      ['vdd', 'shared with other domains (<shareable/>)'],
      ['vde', 'read-only'],
      ['vdf', 'transient (its writes are thrown away)'],
      ['vdg', 'already on the network (rbd rbd/old)'],
      ['vdh', "format 'vmdk' (only raw and qcow2 move)"],
      ['vdi', "a disk of type 'volume' (only file and block disks move)"],
      ['fda', 'a floppy, not a disk'],
      ['vdj', 'has no source (an empty drive)'],
    ]);
  });

  it('a document that is not a domain, or not XML, is one line naming it', () => {
    expect(() => parseDomainXml('<network><name>x</name></network>', 'n.xml')).toThrow(/^n\.xml: not a libvirt domain \(the root element is <network>, not <domain>\)$/);
    expect(() => parseDomainXml('<domain><name>x</name>', 'broken.xml')).toThrow(/^broken\.xml: not well-formed XML: /);
    expect(() => parseDomainXml('<domain/>', 'd.xml')).toThrow(/^d\.xml: the domain has no <name>$/);
  });
});

describe('the rewrite into an RBD disk', () => {
  const xml = domain(`    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io='native' discard='unmap' detect_zeroes='unmap'/>
      <source file='/v/c.qcow2'/>
      <backingStore type='file'><format type='qcow2'/><source file='/v/base.qcow2'/></backingStore>
      <target dev='vdc' bus='virtio'/>
      <serial>S1</serial>
      <boot order='2'/>
      <iotune><total_iops_sec>500</total_iops_sec></iotune>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>
    </disk>`);

  it('keeps target, bus, serial, boot order, iotune, address and the cache/io/discard settings; the driver becomes raw; the backing chain goes', () => {
    const d = parseDomainXml(xml, 'test');
    const before = serializeDomain(d);
    rewriteDiskToRbd(domainDisks(d)[0]!, { name: 'vms/ns1/vm1-vdc', hosts: [{ name: '10.0.0.1', port: 6789 }, { name: '10.0.0.2', port: 6789 }], user: 'libvirt', secretUuid: '11111111-2222-3333-4444-555555555555' });
    const after = serializeDomain(d);
    expect(lineDiff(before, after, ['before', 'after'], 0)).toBe(`--- before
+++ after
@@
-    <disk type="file" device="disk">
-      <driver name="qemu" type="qcow2" cache="none" io="native" discard="unmap" detect_zeroes="unmap"/>
-      <source file="/v/c.qcow2"/>
-      <backingStore type="file"><format type="qcow2"/><source file="/v/base.qcow2"/></backingStore>
+    <disk type="network" device="disk">
+      <driver name="qemu" type="raw" cache="none" io="native" discard="unmap" detect_zeroes="unmap"/>
+      <source protocol="rbd" name="vms/ns1/vm1-vdc">
+        <host name="10.0.0.1" port="6789"/>
+        <host name="10.0.0.2" port="6789"/>
+        <auth username="libvirt">
+          <secret type="ceph" uuid="11111111-2222-3333-4444-555555555555"/>
+        </auth>
+      </source>
`);
    const disk = domainDisks(parseDomainXml(after, 'after'))[0]!;
    expect([disk.type, disk.source, disk.format, disk.target]).toEqual(['network', 'vms/ns1/vm1-vdc', 'raw', 'vdc']);
    expect(planDisk(disk).leftBecause).toBe('already on the network (rbd vms/ns1/vm1-vdc)');
  });

  it('--ceph-config writes <config file> instead of hosts; names are escaped', () => {
    const d = parseDomainXml(xml, 'test');
    rewriteDiskToRbd(domainDisks(d)[0]!, { name: "rbd/a'b", hosts: [], configFile: '/etc/ceph/ceph.conf', user: 'x&y', secretUuid: 'u' });
    const out = serializeDomain(d);
    expect(out).toContain('<source protocol="rbd" name="rbd/a\'b">\n        <config file="/etc/ceph/ceph.conf"/>\n        <auth username="x&amp;y">');
    expect(out).not.toContain('<host ');
  });
});

describe('pools and monitors', () => {
  it('rbd:POOL[/NAMESPACE] with qemu-style options', () => {
    expect(parseRbdPoolSpec('rbd:vms/ns1:id=libvirt:conf=/etc/ceph/c.conf')).toEqual({ pool: 'vms', namespace: 'ns1', image: '', user: 'libvirt', conf: '/etc/ceph/c.conf' });
    expect(parseRbdPoolSpec('rbd:vms')).toEqual({ pool: 'vms', image: '' });
    expect(() => parseRbdPoolSpec('rbd:a/b/c')).toThrow(/is not an RBD pool/);
    expect(() => parseRbdPoolSpec('rbd:a:nope=1')).toThrow(/unknown option 'nope'/);
  });

  it('one host per monitor of the mon dump, v1 address preferred; nothing from garbage', () => {
    const dump = JSON.stringify({
      mons: [
        { name: 'a', public_addrs: { addrvec: [{ type: 'v2', addr: '10.0.0.1:3300' }, { type: 'v1', addr: '10.0.0.1:6789' }] } },
        { name: 'b', public_addrs: { addrvec: [{ type: 'v2', addr: '[fd00::2]:3300' }, { type: 'v1', addr: '[fd00::2]:6789' }] } },
        { name: 'c', addr: '10.0.0.3:6789/0' },
      ],
    });
    expect(monitorsFromMonmap(dump)).toEqual([
      { name: '10.0.0.1', port: 6789 },
      { name: 'fd00::2', port: 6789 },
      { name: '10.0.0.3', port: 6789 },
    ]);
    expect(monitorsFromMonmap('not json')).toEqual([]);
    expect(monitorsFromMonmap('{"mons":[{"public_addrs":{"addrvec":[{"type":"v1","addr":"nonsense"}]}}]}')).toEqual([]);
  });
});
