// The lost first letter of deleted FAT 8.3 names (fat_short_names.h): taken
// only when the live names of the same pattern agree, and said so.
#include <string>
#include <vector>

#include "core/guest_fs/fat_short_names.h"
#include "test.h"

using namespace blocksmith::fs;

namespace {

DeletedFile deleted(const std::string& path, bool directory = false) {
  DeletedFile f;
  f.path = path;
  f.directory = directory;
  return f;
}

}  // namespace

TEST("FAT short names: a camera's pattern in the same directory gives the lost first letter back, marked guessed") {
  ShortNameGuesser g;
  g.add_live("DCIM/100CANON", "IMG_0001.JPG");
  g.add_live("DCIM/100CANON", "IMG_0002.JPG");
  std::vector<DeletedFile> d = {deleted("DCIM/100CANON/_MG_0003.JPG"), deleted("DCIM/100CANON/_EADME.TXT")};
  g.add_lost(0, "DCIM/100CANON", "_MG_0003.JPG");
  g.add_lost(1, "DCIM/100CANON", "_EADME.TXT");
  g.apply(d);
  CHECK_EQ(d[0].path, std::string("DCIM/100CANON/IMG_0003.JPG"));
  CHECK(d[0].name_guessed);
  CHECK_EQ(d[1].path, std::string("DCIM/100CANON/_EADME.TXT"));  // no live name of its shape
  CHECK(!d[1].name_guessed);
}

TEST("FAT short names: live names that disagree leave '_'; the directory's own names decide before the volume's") {
  ShortNameGuesser g;
  g.add_live("A", "IMG_0001.JPG");
  g.add_live("A", "XMG_0002.JPG");  // same shape, another first letter
  g.add_live("B", "DSC_0001.JPG");
  g.add_live("C", "PSC_0001.JPG");
  g.add_live("C", "PSC_0002.JPG");
  std::vector<DeletedFile> d = {deleted("A/_MG_0009.JPG"), deleted("C/_SC_0003.JPG"), deleted("E/_SC_0004.JPG")};
  g.add_lost(0, "A", "_MG_0009.JPG");
  g.add_lost(1, "C", "_SC_0003.JPG");
  g.add_lost(2, "E", "_SC_0004.JPG");
  g.apply(d);
  CHECK_EQ(d[0].path, std::string("A/_MG_0009.JPG"));
  CHECK(!d[0].name_guessed);
  CHECK_EQ(d[1].path, std::string("C/PSC_0003.JPG"));  // C's own names, not B's DSC
  CHECK_EQ(d[2].path, std::string("E/_SC_0004.JPG"));  // E has none; the volume has D and P: no guess
}

TEST("FAT short names: a deleted directory's guessed name carries to the files found inside it") {
  ShortNameGuesser g;
  g.add_live("PHOTOS", "ALBUM001");
  g.add_live("PHOTOS/ALBUM001", "IMG_0001.JPG");
  std::vector<DeletedFile> d = {deleted("PHOTOS/_LBUM002", true), deleted("PHOTOS/_LBUM002/_MG_0100.JPG")};
  g.add_lost(0, "PHOTOS", "_LBUM002");
  g.add_lost(1, "PHOTOS/_LBUM002", "_MG_0100.JPG");
  g.apply(d);
  CHECK_EQ(d[0].path, std::string("PHOTOS/ALBUM002"));
  CHECK_EQ(d[1].path, std::string("PHOTOS/ALBUM002/IMG_0100.JPG"));  // from the volume's IMG_ names
  CHECK(d[1].name_guessed);
}
