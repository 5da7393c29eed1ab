// Detection augmentation keeps boxes consistent with pixels: coloured boxes drawn on a grey image
// stay coloured inside their augmented boxes and nowhere else; the pieces on hand-made cases.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

extern "C" {
#include "host/detect_augment.h"
}

namespace {

const int H = 60, W = 80, S = 64;

// A grey image with a red box [20, 50) × [15, 45) and a blue box [55, 75) × [5, 25) (continuous
// pixel coordinates, pixel-aligned).
struct Scene {
  std::vector<float> img = std::vector<float>(3 * H * W, 0.5f);
  std::vector<float> boxes = {20, 15, 50, 45, 55, 5, 75, 25};
  std::vector<int32_t> labels = {1, 2};  // 1 red, 2 blue
  Scene() {
    for (int i = 0; i < 2; i++) {
      const float *b = &boxes[4 * i];
      for (int y = (int)b[1]; y < (int)b[3]; y++)
        for (int x = (int)b[0]; x < (int)b[2]; x++)
          for (int k = 0; k < 3; k++) img[(k * H + y) * W + x] = (k == 0) == (i == 0) && (k == 2) == (i == 1) ? 1.0f : 0.0f;
    }
  }
};

// R − G and B − G of output pixel (x, y).
float redness(const std::vector<float> &o, int x, int y) { return o[(0 * S + y) * S + x] - o[(1 * S + y) * S + x]; }
float blueness(const std::vector<float> &o, int x, int y) { return o[(2 * S + y) * S + x] - o[(1 * S + y) * S + x]; }

TEST(DetectAugment, BoxesStayOnTheirPixels) {
  Scene sc;
  ist_det_augment a = ist_det_augment_defaults();
  a.photometric = 0;  // colours exact; geometry is what is checked
  std::vector<float> scratch(ist_det_augment_scratch(&a, 3, H, W)), out(3 * S * S), boxes(8);
  std::vector<int32_t> labels(2);
  int changed = 0, dropped = 0, flipped = 0;
  for (uint64_t seed = 0; seed < 300; seed++) {
    ist_rng r;
    ist_rng_seed(&r, seed, 1);
    int n;
    ist_det_augment_image(&a, 3, H, W, sc.img.data(), 2, sc.boxes.data(), sc.labels.data(), S, out.data(),
                          boxes.data(), labels.data(), &n, scratch.data(), &r);
    ASSERT_LE(n, 2);
    dropped += n < 2;
    // The source is at most ~3.6× upsampled (crop ≥ 0.3 of 60 px → 64 px): one source pixel and
    // one output pixel of margin keep bilinear blending out of the judged pixels.
    const float inset = 1 + 64.0f / 18;
    for (int i = 0; i < n; i++) {
      const float *b = &boxes[4 * i];
      ASSERT_TRUE(b[0] >= 0 && b[1] >= 0 && b[2] <= S && b[3] <= S && b[0] <= b[2] && b[1] <= b[3]) << "seed " << seed;
      changed += std::fabs(b[0] - sc.boxes[4 * (labels[i] - 1)] * S / W) > 0.5f;
      flipped += labels[i] == 1 && b[0] > S / 2.0f;
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
          float cx = x + 0.5f, cy = y + 0.5f;
          bool inside = cx > b[0] + inset && cx < b[2] - inset && cy > b[1] + inset && cy < b[3] - inset;
          if (inside) {
            float v = labels[i] == 1 ? redness(out, x, y) : blueness(out, x, y);
            ASSERT_NEAR(v, 1.0f, 1e-5) << "seed " << seed << " object " << labels[i] << " pixel " << x << "," << y;
          }
        }
    }
    if (n == 2)  // every coloured pixel lies in (or next to) its object's box
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
          for (int i = 0; i < 2; i++) {
            float v = labels[i] == 1 ? redness(out, x, y) : blueness(out, x, y);
            const float *b = &boxes[4 * i];
            float cx = x + 0.5f, cy = y + 0.5f;
            bool near = cx > b[0] - inset && cx < b[2] + inset && cy > b[1] - inset && cy < b[3] + inset;
            if (!near) {
              ASSERT_LT(v, 0.1f) << "seed " << seed << " object " << labels[i] << " pixel " << x << "," << y;
            }
          }
  }
  EXPECT_GT(changed, 100) << "zoom-outs, crops and flips happened";
  EXPECT_GT(dropped, 5) << "crops dropped objects whose centre fell outside";
  EXPECT_GT(flipped, 20) << "the red box (left half) ended in the right half after flips";
}

TEST(DetectAugment, WithoutAugmentationOnlyTheResizeScalesBoxes) {
  Scene sc;
  std::vector<float> scratch(ist_det_augment_scratch(nullptr, 3, H, W)), out(3 * S * S), boxes(8);
  std::vector<int32_t> labels(2);
  ist_rng r;
  ist_rng_seed(&r, 1, 1);
  int n;
  ist_det_augment_image(nullptr, 3, H, W, sc.img.data(), 2, sc.boxes.data(), sc.labels.data(), S, out.data(),
                        boxes.data(), labels.data(), &n, scratch.data(), &r);
  ASSERT_EQ(n, 2);
  EXPECT_FLOAT_EQ(boxes[0], 20.0f * S / W);
  EXPECT_FLOAT_EQ(boxes[3], 45.0f * S / H);
  EXPECT_EQ(labels[1], 2);
}

TEST(DetectAugment, FlipMirrorsBoxesAndPixels) {
  const int h = 1, w = 4;
  float img[4] = {1, 2, 3, 4}, box[4] = {0, 0, 1, 1};
  ist_det_flip(1, h, w, img, 1, box);
  EXPECT_EQ(img[0], 4);
  EXPECT_EQ(img[3], 1);
  EXPECT_EQ(box[0], 3);
  EXPECT_EQ(box[2], 4) << "pixel 0 ([0, 1)) becomes pixel 3 ([3, 4))";
}

TEST(DetectAugment, ZoomOutShiftsBoxesAndFillsTheCanvas) {
  float img[2 * 2] = {1, 1, 1, 1}, box[4] = {0, 0, 2, 2}, fill[3] = {0.25f, 0, 0};
  float canvas[4 * 5];
  ist_det_zoom_out(1, 2, 2, img, 4, 5, 1, 2, fill, canvas, 1, box);
  EXPECT_EQ(box[0], 2);
  EXPECT_EQ(box[1], 1);
  EXPECT_EQ(box[2], 4);
  EXPECT_EQ(box[3], 3);
  EXPECT_EQ(canvas[0], 0.25f);
  EXPECT_EQ(canvas[1 * 5 + 2], 1.0f);
  EXPECT_EQ(canvas[2 * 5 + 3], 1.0f);
  EXPECT_EQ(canvas[2 * 5 + 4], 0.25f);
}

TEST(DetectAugment, IouCropKeepsObjectsWhoseCentreIsInside) {
  const float boxes[8] = {10, 10, 30, 30, 70, 40, 78, 58};
  for (uint64_t seed = 0; seed < 200; seed++) {
    ist_rng r;
    ist_rng_seed(&r, seed, 2);
    int top, left, ch, cw;
    uint8_t keep[2];
    if (!ist_det_iou_crop_window(H, W, 2, boxes, &r, &top, &left, &ch, &cw, keep)) continue;
    ASSERT_TRUE(keep[0] || keep[1]);
    ASSERT_GE(cw, (int)(0.3f * W) - 1);
    ASSERT_GE(ch, (int)(0.3f * H) - 1);
    ASSERT_LE(left + cw, W);
    ASSERT_LE(top + ch, H);
    float aspect = (float)cw / ch;
    ASSERT_TRUE(aspect >= 0.5f && aspect <= 2.0f);
    for (int i = 0; i < 2; i++) {
      float cx = 0.5f * (boxes[4 * i] + boxes[4 * i + 2]), cy = 0.5f * (boxes[4 * i + 1] + boxes[4 * i + 3]);
      bool in = left < cx && cx < left + cw && top < cy && cy < top + ch;
      ASSERT_EQ((bool)keep[i], in) << "seed " << seed;
    }
  }
}

TEST(DetectAugment, PhotometricKeepsRangeGreyAndColour) {
  Scene sc;
  int changed = 0;
  for (uint64_t seed = 0; seed < 50; seed++) {
    std::vector<float> img = sc.img;
    ist_rng r;
    ist_rng_seed(&r, seed, 3);
    ist_det_photometric(3, H, W, img.data(), &r);
    for (float v : img) ASSERT_TRUE(v >= 0 && v <= 1);
    // Every step maps grey to grey, and none takes the red box's colour away (saturation and
    // contrast at most halve it).
    auto spread = [&](int p) {
      float a = img[p], b = img[H * W + p], c = img[2 * H * W + p];
      return std::max(a, std::max(b, c)) - std::min(a, std::min(b, c));
    };
    ASSERT_LT(spread(2 * W + 2), 1e-5f) << "seed " << seed;
    ASSERT_GT(spread(30 * W + 35), 0.15f) << "seed " << seed;
    changed += img[0] != 0.5f;
  }
  EXPECT_GT(changed, 20);
}

TEST(DetectAugment, HueRotatesColoursAndLeavesGrey) {
  // Pixels (CHW, 4 of them): red, red, a muted orange, grey.
  std::vector<float> img = {1, 1, 0.8f, 0.3f, 0, 0, 0.4f, 0.3f, 0, 0, 0.2f, 0.3f};
  std::vector<float> third = img, sixth = img;
  ist_det_adjust_hue(4, third.data(), 1.0f / 3);
  ist_det_adjust_hue(4, sixth.data(), -1.0f / 6);
  // Red + ⅓ of the circle = green; red − ⅙ = magenta.
  EXPECT_NEAR(third[0], 0, 1e-5);
  EXPECT_NEAR(third[4], 1, 1e-5);
  EXPECT_NEAR(third[8], 0, 1e-5);
  EXPECT_NEAR(sixth[0], 1, 1e-5);
  EXPECT_NEAR(sixth[4], 0, 1e-5);
  EXPECT_NEAR(sixth[8], 1, 1e-5);
  // Orange (0.8, 0.4, 0.2) (h = 1/18, s = 0.75, v = 0.8): + ⅓ → (0.2, 0.8, 0.4), − ⅙ → (0.8, 0.2,
  // 0.6), the values torchvision's adjust_hue gives.
  EXPECT_NEAR(third[2], 0.2f, 1e-5);
  EXPECT_NEAR(third[6], 0.8f, 1e-5);
  EXPECT_NEAR(third[10], 0.4f, 1e-5);
  EXPECT_NEAR(sixth[2], 0.8f, 1e-5);
  EXPECT_NEAR(sixth[6], 0.2f, 1e-5);
  EXPECT_NEAR(sixth[10], 0.6f, 1e-5);
  for (int k = 0; k < 3; k++) EXPECT_EQ(third[4 * k + 3], 0.3f) << "grey has no hue";
}

}  // namespace
