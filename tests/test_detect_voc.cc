// VOC annotations and split lists: what the strict reader accepts, and the one-line errors it
// gives for missing fields, bad numbers, unknown classes and boxes outside the image.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

extern "C" {
#include "host/voc.h"
}

namespace {

std::string object(const std::string &name, const std::string &box, const std::string &extra = "<difficult>0</difficult>") {
  return "  <object>\n    <name>" + name + "</name>\n    <pose>Left</pose>\n    <truncated>0</truncated>\n    " + extra +
         "\n    <bndbox>\n      " + box + "\n    </bndbox>\n  </object>\n";
}

std::string box(const char *x0, const char *y0, const char *x1, const char *y1) {
  return std::string("<xmin>") + x0 + "</xmin><ymin>" + y0 + "</ymin><xmax>" + x1 + "</xmax><ymax>" + y1 + "</ymax>";
}

std::string annotation(const std::string &objects, const std::string &size =
                                                       "<width>500</width>\n<height>375</height>\n<depth>3</depth>") {
  return "<?xml version=\"1.0\"?>\n<!-- a comment -->\n<annotation>\n  <folder>VOC2007</folder>\n  "
         "<filename>000001.jpg</filename>\n  <source><database>The VOC2007 Database</database></source>\n  <size>\n" +
         size + "\n  </size>\n  <segmented>0</segmented>\n" + objects + "</annotation>\n";
}

// The error of parsing text, or "" when it parses.
std::string parse_error(const std::string &text) {
  ist_voc_annotation a;
  ist_status s = ist_voc_parse("x.xml", text.c_str(), &a);
  if (s == IST_OK) {
    ist_voc_annotation_free(&a);
    return "";
  }
  return ist_last_error();
}

TEST(VocClasses, AreTorchvisionsTwentyInOrder) {
  EXPECT_STREQ(ist_voc_classes[0], "aeroplane");
  EXPECT_STREQ(ist_voc_classes[14], "person");
  EXPECT_STREQ(ist_voc_classes[19], "tvmonitor");
  EXPECT_EQ(ist_voc_class_index("diningtable"), 10);
  EXPECT_EQ(ist_voc_class_index("Person"), -1) << "names are case-sensitive as in the devkit";
}

TEST(VocXml, ReadsSizeObjectsBoxesAndDifficult) {
  std::string text = annotation(object("dog", box("48", "240", "195", "371")) +
                                object("person", box("8", "12.5", "352", "498"), "<difficult>1</difficult>") +
                                // Parts carry their own bndbox: only the object's own is read.
                                object("person", box("1", "2", "3", "4"),
                                       "<part><name>head</name><bndbox>" + box("9", "9", "9", "9") + "</bndbox></part>"),
                                "<width>500</width><height>500</height><depth>3</depth>");
  ist_voc_annotation a;
  ASSERT_EQ(ist_voc_parse("x.xml", text.c_str(), &a), IST_OK) << ist_last_error();
  EXPECT_EQ(a.width, 500);
  EXPECT_EQ(a.height, 500);
  EXPECT_EQ(a.depth, 3);
  ASSERT_EQ(a.n, 3);
  EXPECT_EQ(a.objects[0].label, ist_voc_class_index("dog"));
  EXPECT_EQ(a.objects[0].difficult, 0);
  EXPECT_FLOAT_EQ(a.objects[0].box[0], 48);
  EXPECT_FLOAT_EQ(a.objects[0].box[3], 371);
  EXPECT_EQ(a.objects[1].difficult, 1);
  EXPECT_FLOAT_EQ(a.objects[1].box[1], 12.5f);
  EXPECT_EQ(a.objects[2].difficult, 0) << "a missing <difficult> means 0, as the devkit";
  EXPECT_FLOAT_EQ(a.objects[2].box[2], 3);
  ist_voc_annotation_free(&a);
}

TEST(VocXml, AnImageWithoutObjectsIsValid) {
  ist_voc_annotation a;
  ASSERT_EQ(ist_voc_parse("x.xml", annotation("").c_str(), &a), IST_OK) << ist_last_error();
  EXPECT_EQ(a.n, 0);
  ist_voc_annotation_free(&a);
}

TEST(VocXml, MissingFieldsAreNamed) {
  EXPECT_NE(parse_error(annotation("", "<width>500</width><depth>3</depth>")).find("x.xml: <size>/<height> is missing"),
            std::string::npos);
  std::string no_ymax = object("cat", "<xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>");
  EXPECT_NE(parse_error(annotation(no_ymax)).find("object 1 <bndbox>/<ymax> is missing"), std::string::npos)
      << parse_error(annotation(no_ymax));
  std::string no_name = "<object><bndbox>" + box("1", "1", "2", "2") + "</bndbox></object>";
  EXPECT_NE(parse_error(annotation(object("cat", box("1", "1", "2", "2")) + no_name)).find("object 2 <name> is missing"),
            std::string::npos);
  EXPECT_NE(parse_error(annotation("<object><name>cat</name></object>")).find("object 1 <bndbox> is missing"),
            std::string::npos);
  EXPECT_NE(parse_error("<annotation><size><width>5</width><height>5</height><depth>3</depth></size>"
                        "<object><name>cat</name><bndbox><xmin></xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
                        "</bndbox></object></annotation>")
                .find("<xmin> (line 1) is empty"),
            std::string::npos);
  EXPECT_NE(parse_error("<annotation><object/></annotation>").find("<size> is missing"), std::string::npos);
}

TEST(VocXml, BadNumbersAreRejected) {
  for (const char *bad : {"12a", "-3", "1e2", "1.", ".5", "1 2", "+4", "99999999999999999999", "0x10"}) {
    std::string e = parse_error(annotation(object("cat", box("1", "1", bad, "5"))));
    EXPECT_NE(e.find("object 1 <bndbox>/<xmax>"), std::string::npos) << bad << ": " << e;
    EXPECT_NE(e.find("not a number"), std::string::npos) << bad << ": " << e;
  }
  for (const char *bad : {"0", "abc", "70000", "-5", "3.5", "12345678901234567890"}) {
    std::string e = parse_error(annotation("", std::string("<width>") + bad + "</width><height>5</height><depth>3</depth>"));
    EXPECT_NE(e.find("<size>/<width>"), std::string::npos) << bad << ": " << e;
  }
  EXPECT_NE(parse_error(annotation(object("cat", box("1", "1", "2", "2"), "<difficult>2</difficult>"))).find("<difficult>"),
            std::string::npos);
}

TEST(VocXml, UnknownClassIsNamed) {
  std::string e = parse_error(annotation(object("unicorn", box("1", "1", "2", "2"))));
  EXPECT_NE(e.find("object 1 <name> (line"), std::string::npos) << e;
  EXPECT_NE(e.find("'unicorn' is not a VOC class"), std::string::npos) << e;
}

TEST(VocXml, BoxesOutsideTheImageOrEmptyAreRejected) {
  std::string e = parse_error(annotation(object("cat", box("1", "1", "501", "5"))));
  EXPECT_NE(e.find("<xmax> (line"), std::string::npos) << e;
  EXPECT_NE(e.find("outside the image (width 500)"), std::string::npos) << e;
  e = parse_error(annotation(object("cat", box("1", "1", "5", "375.5"))));
  EXPECT_NE(e.find("outside the image (height 375)"), std::string::npos) << e;
  e = parse_error(annotation(object("cat", box("10", "1", "9", "5"))));
  EXPECT_NE(e.find("object 1 <bndbox> is empty: <xmax> 9 < <xmin> 10"), std::string::npos) << e;
  EXPECT_EQ(parse_error(annotation(object("cat", box("0", "0", "500", "375")))), "") << "the whole image is a box";
  EXPECT_EQ(parse_error(annotation(object("cat", box("7", "7", "7", "7")))), "") << "one pixel (inclusive coordinates)";
}

TEST(VocXml, MalformedXmlIsRejectedWithTheLine) {
  EXPECT_NE(parse_error("<annotation>\n<size>\n</annotation>").find("line 3: </annotation> does not close <size>"),
            std::string::npos)
      << parse_error("<annotation>\n<size>\n</annotation>");
  EXPECT_NE(parse_error("<annotation>\n<size>").find("never closed"), std::string::npos);
  EXPECT_NE(parse_error("<annotation/><annotation/>").find("a second root element"), std::string::npos);
  EXPECT_NE(parse_error("<annotation><size").find("unterminated tag <size"), std::string::npos);
  EXPECT_NE(parse_error("<annotation><!-- open").find("unterminated"), std::string::npos);
  EXPECT_NE(parse_error("<voc></voc>").find("not <annotation>"), std::string::npos);
  EXPECT_NE(parse_error("").find("no root element"), std::string::npos);
  EXPECT_NE(parse_error("junk<annotation/>").find("text outside the root element"), std::string::npos);
}

class VocLayout : public ::testing::Test {
 protected:
  std::filesystem::path dir;
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("ist_voc_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  void write(const std::filesystem::path &p, const std::string &text) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void make_root(const std::string &name, const std::vector<std::string> &ids, const std::string &list_extra = "") {
    std::string list;
    for (auto &id : ids) {
      list += id + list_extra + "\n";
      write(dir / name / "Annotations" / (id + ".xml"), annotation(object("cat", box("1", "2", "30", "40"))));
    }
    write(dir / name / "ImageSets" / "Main" / "trainval.txt", list);
  }
};

TEST_F(VocLayout, SeveralRootsAreConcatenatedInListOrder) {
  make_root("VOC2007", {"000005", "000007"});
  make_root("VOC2012", {"2008_000002"}, " 1");
  std::string spec = (dir / "VOC2007").string() + "+" + (dir / "VOC2012").string();
  ist_voc_set s;
  ASSERT_EQ(ist_voc_load_spec(spec.c_str(), "trainval", 0, &s), IST_OK) << ist_last_error();
  ASSERT_EQ(s.n, 3);
  EXPECT_STREQ(s.ids[0], "000005");
  EXPECT_STREQ(s.ids[2], "2008_000002");
  EXPECT_EQ(std::string(s.jpeg_paths[1]), (dir / "VOC2007" / "JPEGImages" / "000007.jpg").string());
  EXPECT_EQ(s.annotations[2].n, 1);
  EXPECT_FLOAT_EQ(s.annotations[2].objects[0].box[3], 40);
  ist_voc_set_free(&s);
  ASSERT_EQ(ist_voc_load_spec(spec.c_str(), "trainval", 2, &s), IST_OK) << ist_last_error();
  EXPECT_EQ(s.n, 2) << "limit keeps the first images overall";
  ist_voc_set_free(&s);
}

TEST_F(VocLayout, AMissingListOrAnnotationIsNamed) {
  make_root("VOC2007", {"000005"});
  ist_voc_set s;
  std::string root = (dir / "VOC2007").string();
  const char *roots[] = {root.c_str()};
  EXPECT_EQ(ist_voc_load(roots, 1, "test", 0, &s), IST_ERR_IO);
  EXPECT_NE(std::string(ist_last_error()).find("ImageSets/Main/test.txt: cannot open"), std::string::npos)
      << ist_last_error();
  write(dir / "VOC2007" / "ImageSets" / "Main" / "val.txt", "000005\n000009\n");
  EXPECT_EQ(ist_voc_load(roots, 1, "val", 0, &s), IST_ERR_IO);
  EXPECT_NE(std::string(ist_last_error()).find("Annotations/000009.xml: cannot open"), std::string::npos)
      << ist_last_error();
  write(dir / "VOC2007" / "ImageSets" / "Main" / "bad.txt", "../etc/passwd\n");
  EXPECT_EQ(ist_voc_load(roots, 1, "bad", 0, &s), IST_ERR_FORMAT);
  EXPECT_NE(std::string(ist_last_error()).find("line 1: '../etc/passwd' is not an image id"), std::string::npos)
      << ist_last_error();
  write(dir / "VOC2007" / "ImageSets" / "Main" / "empty.txt", "\n\n");
  EXPECT_EQ(ist_voc_load(roots, 1, "empty", 0, &s), IST_ERR_FORMAT);
  EXPECT_NE(std::string(ist_last_error()).find("lists no images"), std::string::npos) << ist_last_error();
}

}  // namespace
