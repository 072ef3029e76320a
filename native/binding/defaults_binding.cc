// `defaults`: every option default that crosses the seam, read from
// default-constructed core option structs (the one place each is written).
// The TS side passes undefined for an option not given, and the CLI's --help
// shows these values.
#include <napi.h>

#include "exports.h"
#include "option_fields.h"
#include "option_tables.h"

namespace binding {

void register_defaults(Napi::Env env, Napi::Object exports) {
  namespace bs = blocksmith;
  Napi::Object d = Napi::Object::New(env);
  d.Set("scan", defaults_object<bs::ImageScanOptions>(env));
  d.Set("sparsify", defaults_object<bs::SparsifyOptions>(env));
  d.Set("rbdTarget", defaults_object<bs::rbd::Target>(env));
  d.Set("rbdImport", defaults_object<bs::rbd::ImportOptions>(env));
  d.Set("rbdExport", defaults_object<bs::rbd::ExportOptions>(env));
  d.Set("rbdSparsify", defaults_object<bs::rbd::RbdSparsifyOptions>(env));
  d.Set("carve", defaults_object<bs::carve::CarveOptions>(env));
  d.Freeze();
  exports.Set("defaults", d);
}

}  // namespace binding
