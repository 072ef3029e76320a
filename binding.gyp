{
  # Three targets share one static core library:
  #   blocksmith_core - plain C++20, no Node headers (native/core)
  #   blocksmith      - the N-API addon (native/binding), loaded only by src/native.ts
  #   core_tests      - the core's own unit tests (native/tests), run by `npm test`
  # `npm run prebuilds` (prebuildify; not "prebuild", which npm would run before
  # every `npm run build`) sets blocksmith_prebuild=true: the addon then
  # carries its own libstdc++ (see below) and core_tests is not built. A source
  # build from the npm package (no native/tests in it) skips core_tests too.
  "variables": {
    "blocksmith_prebuild%": "false"
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions", "-fno-rtti"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
    "cflags": ["-Wall", "-Wextra", "-O3", "-fvisibility=hidden"],
    "cflags_cc": ["-std=c++20", "-fexceptions", "-frtti"],
    "defines": ["_FILE_OFFSET_BITS=64", "_GNU_SOURCE"],
    "ldflags": ["-pthread"],
    "link_settings": {"libraries": ["-ldl"]},
    "libraries": ["-pthread"]
  },
  "targets": [
    {
      "target_name": "blocksmith_core",
      "type": "static_library",
      "cflags": ["-fPIC"],
      "sources": [
        "native/core/zero/zero_detect.cc",
        "native/core/zero/zero_kernels_portable.cc",
        "native/core/zero/zero_kernels_x86.cc",
        "native/core/zero/classify.cc",
        "native/core/zero/cpu_features.cc",
        "native/core/base/error.cc",
        "native/core/readers/file_reader.cc",
        "native/core/pipeline/scan_pipeline.cc",
        "native/core/sinks/extent_map_sink.cc",
        "native/core/host/image_lock.cc",
        "native/core/host/image_use.cc", "native/core/host/lease_guard.cc",
        "native/core/sinks/punch_sink.cc",
        "native/core/sinks/sparse_file_sink.cc",
        "native/core/operations/sparsify.cc",
        "native/core/operations/image_scan.cc",
        "native/core/readers/image_open.cc",
        "native/core/readers/container_probe.cc",
        "native/core/qcow2/decompress.cc",
        "native/core/qcow2/qcow2_header.cc",
        "native/core/qcow2/cluster_map.cc",
        "native/core/qcow2/qcow2_reader.cc",
        "native/core/guest_fs/checksum.cc", "native/core/guest_fs/partition.cc", "native/core/guest_fs/ext.cc", "native/core/guest_fs/ext_refs.cc",
        "native/core/guest_fs/ext_block_map.cc", "native/core/guest_fs/jbd2.cc",
        "native/core/guest_fs/inspect.cc",
        "native/core/guest_fs/scan_scope.cc",
        "native/core/guest_fs/fat_boot.cc", "native/core/guest_fs/fat_table.cc", "native/core/guest_fs/fat_dir.cc", "native/core/guest_fs/fs_text.cc", "native/core/guest_fs/fat_short_names.cc",
        "native/core/guest_fs/fat_recover.cc", "native/core/guest_fs/fat.cc",
        "native/core/guest_fs/exfat_boot.cc", "native/core/guest_fs/exfat_clusters.cc", "native/core/guest_fs/exfat_dir.cc", "native/core/guest_fs/exfat.cc",
        "native/core/host/mount_check.cc", "native/core/host/mountinfo.cc", "native/core/host/block_devices.cc", "native/core/host/same_storage.cc",
        "native/core/rbd/librbd_api.cc",
        "native/core/rbd/session.cc",
        "native/core/rbd/image_admin.cc",
        "native/core/sinks/rbd_sink.cc", "native/core/sinks/rbd_verify_sink.cc",
        "native/core/sinks/rbd_discard_sink.cc",
        "native/core/rbd/rbd_reader.cc",
        "native/core/operations/rbd_copy.cc",
        "native/core/operations/rbd_sparsify.cc",
        "native/core/carve/signature.cc",
        "native/core/carve/huffman.cc",
        "native/core/carve/ac_runs.cc",
        "native/core/carve/entropy.cc",
        "native/core/carve/entropy_bmi2.cc",
        "native/core/carve/entropy_portable.cc",
        "native/core/carve/exif.cc",
        "native/core/carve/jpeg_check.cc",
        "native/core/carve/sha256.cc",
        "native/core/carve/sha256_ni.cc",
        "native/core/carve/output.cc",
        "native/core/carve/block_size.cc",
        "native/core/carve/seam.cc",
        "native/core/carve/reassemble.cc",
        "native/core/operations/carve.cc",
        "native/core/guest_fs/volumes.cc",
        "native/core/guest_fs/ext_dirents.cc", "native/core/guest_fs/ext_inode_copy.cc", "native/core/guest_fs/ext_deleted.cc",
        "native/core/guest_fs/ext_paths.cc", "native/core/guest_fs/ext_file_plan.cc",
        "native/core/operations/undelete.cc",
        "native/core/operations/undelete_reassemble.cc"
      ], "include_dirs": ["native"
      ]
    },
    {
      "target_name": "blocksmith",
      "dependencies": ["blocksmith_core"],
      "include_dirs": ["native", "<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "sources": [
        "native/binding/addon.cc",
        "native/binding/errors.cc",
        "native/binding/job.cc",
        "native/binding/zero_binding.cc",
        "native/binding/scan_binding.cc",
        "native/binding/defaults_binding.cc",
        "native/binding/sparsify_binding.cc",
        "native/binding/rbd_binding.cc",
        "native/binding/carve_binding.cc",
        "native/binding/host_binding.cc",
        "native/binding/undelete_binding.cc"
      ],
      "conditions": [
        # The prebuilt binary must load on machines whose libstdc++ is older than
        # the build host's: linked dynamically it needs GLIBCXX_3.4.30 (GCC 12's),
        # which RHEL/Rocky 9 and Amazon Linux 2023 (GCC 11) lack. Linked in
        # statically, only libc, libm and libgcc_s (stable ABIs) remain and the
        # floor is the build host's glibc symbols (2.34 on Debian 12; see
        # prebuild_glibc_compat.cc). The export map keeps every symbol but the
        # N-API entry points local, so the two libstdc++ copies in the process
        # never bind to each other; no C++ exception crosses the addon's
        # boundary (node-addon-api turns them into JS errors inside it).
        # Source builds keep the system libstdc++.
        ["blocksmith_prebuild=='true'", {
          "sources": ["native/binding/prebuild_glibc_compat.cc"],
          "ldflags": [
            "-static-libstdc++",
            "-Wl,--exclude-libs,ALL",
            "-Wl,--version-script=<(module_root_dir)/native/binding/prebuild_exports.map"
          ]
        }]
      ]
    },
    {
      "target_name": "core_tests",
      "type": "executable",
      "dependencies": ["blocksmith_core"],
      "include_dirs": ["native"],
      "sources": [
        "native/tests/test_main.cc",
        "native/tests/test_zero_detect.cc",
        "native/tests/test_classify.cc",
        "native/tests/test_source.cc",
        "native/tests/test_sparse_copy_writes.cc",
        "native/tests/test_lease.cc",
        "native/tests/test_host.cc",
        "native/tests/test_scan_pipeline.cc",
        "native/tests/test_qcow2.cc",
        "native/tests/test_container_probe.cc",
        "native/tests/test_carve.cc",
        "native/tests/test_scan_decoders.cc",
        "native/tests/test_sha256.cc",
        "native/tests/test_reassemble.cc",
        "native/tests/test_fs.cc",
        "native/tests/test_ext_block_map.cc", "native/tests/test_jbd2.cc",
        "native/tests/test_scan_scope.cc",
        "native/tests/test_fat.cc",
        "native/tests/test_fat_short_names.cc",
        "native/tests/test_exfat.cc",
        "native/tests/test_output_files.cc",
        "native/tests/test_carve_output.cc",
        "native/tests/conformance.cc",
        "native/tests/test_conformance.cc",
        "native/tests/test_undelete.cc",
        "native/tests/test_undelete_reassemble.cc",
        "native/tests/test_ext_deleted.cc",
        "native/tests/test_rbd_discard_plan.cc"
      ],
      "conditions": [
        # A target of type none builds nothing: the prebuild needs only the addon.
        ["blocksmith_prebuild=='true' or '<!(test -d native/tests && echo 1 || echo 0)'=='0'", {
          "type": "none"
        }],
        ["'<!(test -f /usr/include/rbd/librbd.h && test -f /usr/include/rados/librados.h && echo 1 || echo 0)'=='1'", {
          "sources": ["native/tests/test_librbd_api.cc"]
        }]
      ]
    }
  ]
}
