// The typed HDF5 layer (common/h5), serial: round trips of every dtype,
// selections, attributes, strings of both kinds, dataset layouts, and
// errors that name the file and the object.
#include "common/h5/h5.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "common/h5/half_float.hpp"
#include "expect_error.hpp"
#include "temp_dir.hpp"

namespace h5 = lpi::h5;
using lpi::test::expect_error;
using lpi::test::TempDir;

namespace {

template <class T>
void round_trip(const h5::File& f, const std::string& name, hid_t file_type) {
  const std::vector<T> values = {T(1), T(-2), T(3), T(0), T(5), T(7)};
  f.write_dataset(name, {2, 3}, values);
  const auto ds = f.dataset(name);
  EXPECT_EQ(ds.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ds.read<T>(), values);
  EXPECT_TRUE(H5Tequal(ds.type().id(), file_type) > 0) << name;
}

}  // namespace

TEST(H5, RoundTripsEveryDtype) {
  TempDir t;
  const auto path = (t / "types.h5").string();
  {
    const auto f = h5::File::create(path);
    round_trip<float>(f, "f32", H5T_IEEE_F32LE);
    round_trip<double>(f, "f64", H5T_IEEE_F64LE);
    round_trip<int32_t>(f, "i32", H5T_STD_I32LE);
    round_trip<int64_t>(f, "i64", H5T_STD_I64LE);
    f.write_dataset("u8", {3}, std::vector<uint8_t>{0, 1, 255});
    f.write_dataset("text", std::vector<std::string>{"a", "", "ünïcode"});
  }
  const auto f = h5::File::open(path);
  EXPECT_EQ(f.dataset("u8").read<uint8_t>(), (std::vector<uint8_t>{0, 1, 255}));
  EXPECT_EQ(f.dataset("text").read<std::string>(), (std::vector<std::string>{"a", "", "ünïcode"}));
  EXPECT_TRUE(f.dataset("text").type().is_variable_string());
  // Reading with a conversion: int32 on file, int64 in memory.
  EXPECT_EQ(f.dataset("i32").read<int64_t>(), (std::vector<int64_t>{1, -2, 3, 0, 5, 7}));
}

// float32 written into float16 and bfloat16 datasets: HDF5 converts on the
// write and back on the read, rounding to nearest (half an ulp of the 16-bit
// type at most; 11 and 8 significant bits), keeping signs, zeros and
// infinities; h5py reads the float16 one as numpy float16.
TEST(H5, SixteenBitFloatsRoundToNearest) {
  TempDir t;
  const auto path = (t / "half.h5").string();
  std::vector<float> values;
  for (int i = -300; i <= 300; ++i) values.push_back(static_cast<float>(i) * 0.0137f);
  // Values whose rounding carries into the exponent (HDF5's own conversion
  // got 0.0624962 -> 0.03125 in half precision), ties, and a negative zero.
  for (float v : {1e-3f, -2.5e-4f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 512, 30000.0f,
                  0.062496185302734375f, -0.1249f, 1.9999f, -0.0f})
    values.push_back(v);
  const std::vector<int64_t> dims = {static_cast<int64_t>(values.size())};
  struct Kind {
    const char* name;
    h5::Type type;
    double half_ulp;  // relative
  };
  std::vector<Kind> kinds;
  kinds.push_back({"f16", h5::Type::float16(), std::ldexp(1.0, -11)});
  kinds.push_back({"bf16", h5::Type::bfloat16(), std::ldexp(1.0, -8)});
  {
    const auto f = h5::File::create(path);
    for (const auto& k : kinds) {
      EXPECT_EQ(k.type.size(), 2u);
      f.create_dataset(k.name, k.type, h5::DatasetSpec::plain(dims)).write(values);
    }
  }
  const auto f = h5::File::open(path);
  for (const auto& k : kinds) {
    const auto back = f.dataset(k.name).read<float>();
    ASSERT_EQ(back.size(), values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double err = std::abs(static_cast<double>(back[i]) - values[i]);
      EXPECT_LE(err, std::abs(values[i]) * k.half_ulp * (1 + 1e-9) + 1e-7)
          << k.name << ": " << values[i] << " read back as " << back[i];
      EXPECT_EQ(std::signbit(back[i]), std::signbit(values[i])) << k.name << ": " << values[i];
    }
  }
  // A negative zero stays one.
  EXPECT_EQ(f.dataset("bf16").read<float>().back(), -0.0f);
}

// The conversion itself: every result is the representable value nearest to
// the input (ties to the even pattern), over random floats of every scale,
// and every 16-bit pattern reads back and converts to itself.
TEST(H5, HalfFloatConversionIsNearestEven) {
  for (const auto kind : {h5::Half::ieee, h5::Half::bfloat}) {
    for (uint32_t b = 0; b < 65536; ++b) {
      const auto bits = static_cast<uint16_t>(b);
      const float v = h5::from_half(bits, kind);
      if (std::isnan(v)) continue;
      ASSERT_EQ(h5::to_half(v, kind), bits) << "pattern " << b;
    }
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> mantissa(-2.0, 2.0);
    std::uniform_int_distribution<int> exponent(kind == h5::Half::ieee ? -26 : -60, 16);
    for (int i = 0; i < 200000; ++i) {
      const float x = static_cast<float>(std::ldexp(mantissa(rng), exponent(rng)));
      if (kind == h5::Half::ieee && std::abs(x) >= 65520.0f) continue;  // infinity: below
      const uint16_t h = h5::to_half(x, kind);
      const double got = h5::from_half(h, kind);
      const double err = std::abs(got - x);
      for (int step : {-1, 1}) {  // the neighbouring patterns of the same sign
        const int n = (h & 0x7fff) + step;
        if (n < 0 || n > 0x7bff + (kind == h5::Half::bfloat ? 0x380 : 0)) continue;
        const double other = h5::from_half(static_cast<uint16_t>((h & 0x8000) | n), kind);
        const double other_err = std::abs(other - x);
        ASSERT_LE(err, other_err) << x << " -> " << got << ", but " << other << " is nearer";
        if (err == other_err) {
          ASSERT_EQ(h & 1, 0) << x << ": a tie goes to the even pattern";
        }
      }
    }
  }
  EXPECT_EQ(h5::to_half(65520.0f, h5::Half::ieee), 0x7c00);  // rounds up past 65504: infinity
  EXPECT_EQ(h5::to_half(65519.0f, h5::Half::ieee), 0x7bff);  // 65504
  EXPECT_TRUE(std::isnan(h5::from_half(h5::to_half(NAN, h5::Half::bfloat), h5::Half::bfloat)));
}

TEST(H5, SelectionsReadAndWriteHyperslabs) {
  TempDir t;
  const auto f = h5::File::create((t / "sel.h5").string());
  h5::DatasetSpec spec = h5::DatasetSpec::plain({4, 3, 2});
  spec.chunk = {1, 3, 2};
  spec.early_allocation = true;
  spec.fill_time = h5::FillTime::alloc;
  spec.fill_value = -1;
  const auto ds = f.create_dataset("a", h5::dtype<int32_t>::file(), spec);
  EXPECT_EQ(ds.read<int32_t>(), std::vector<int32_t>(24, -1)) << "the fill value";
  ds.select({1, 0, 0}, {2, 3, 2}).write(std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  EXPECT_EQ(ds.select({2, 1, 1}, {1, 1, 1}).read<int32_t>(), std::vector<int32_t>{9});
  EXPECT_EQ(ds.select({0, 0, 0}, {1, 1, 2}).read<int32_t>(), (std::vector<int32_t>{-1, -1}));
  const auto all = ds.read<int32_t>();
  EXPECT_EQ(all[6], 0);
  EXPECT_EQ(all[17], 11);
  EXPECT_EQ(all[18], -1);
  const float one = 1.5f;
  const auto g = f.create_dataset("g", h5::dtype<float>::file(), h5::DatasetSpec::plain({3}));
  g.select({2}, {1}).write(&one, 1);
  float back = 0;
  g.select({2}, {1}).read(&back, 1);
  EXPECT_EQ(back, 1.5f);
  // The layout asked for is the layout made.
  const h5::Handle dcpl(H5Dget_create_plist(ds.id()), H5Pclose);
  H5D_alloc_time_t alloc;
  H5Pget_alloc_time(dcpl.id(), &alloc);
  EXPECT_EQ(alloc, H5D_ALLOC_TIME_EARLY);
  EXPECT_EQ(H5Pget_layout(dcpl.id()), H5D_CHUNKED);
  hsize_t chunk[3];
  ASSERT_EQ(H5Pget_chunk(dcpl.id(), 3, chunk), 3);
  EXPECT_EQ(chunk[0], 1u);
  EXPECT_EQ(chunk[1], 3u);
  const h5::Handle plain(H5Dget_create_plist(g.id()), H5Pclose);
  EXPECT_EQ(H5Pget_layout(plain.id()), H5D_CONTIGUOUS);
}

TEST(H5, FixedStringsArePaddedAndCut) {
  TempDir t;
  const auto f = h5::File::create((t / "fixed.h5").string());
  const auto ds = f.create_dataset("s", h5::Type::fixed_string(4), h5::DatasetSpec::plain({3}));
  ds.write(std::vector<std::string>{"ab", "abcd", ""});
  EXPECT_FALSE(ds.type().is_variable_string());
  EXPECT_EQ(ds.type().size(), 4u);
  EXPECT_EQ(ds.read<std::string>(), (std::vector<std::string>{"ab", "abcd", ""}));
  ds.select({1}, {1}).write(std::vector<std::string>{"xyz-too-long"});
  EXPECT_EQ(ds.select({1}, {1}).read<std::string>(), std::vector<std::string>{"xyz-"});
}

TEST(H5, TypedAttributes) {
  TempDir t;
  const auto path = (t / "attr.h5").string();
  {
    const auto f = h5::File::create(path);
    const auto g = f.create_group("g");
    g.set_attribute("n", int64_t{-42});
    g.set_attribute("x", 0.25);
    g.set_attribute("v", "variable");
    g.set_attribute("f", "fixed", h5::Str::fixed);
    g.set_attribute("empty", "", h5::Str::fixed);
    g.set_attribute("n", int64_t{7});  // replaced
  }
  const auto f = h5::File::open(path);
  const auto g = f.group("g");
  EXPECT_EQ(g.attribute("n").read<int64_t>(), 7);
  EXPECT_EQ(g.attribute("x").read<double>(), 0.25);
  EXPECT_EQ(g.attribute("v").read<std::string>(), "variable");
  EXPECT_TRUE(g.attribute("v").type().is_variable_string());
  EXPECT_EQ(g.attribute("f").read<std::string>(), "fixed");
  EXPECT_FALSE(g.attribute("f").type().is_variable_string());
  EXPECT_EQ(g.attribute("empty").read<std::string>(), "");
  EXPECT_EQ(g.attribute_names(), (std::vector<std::string>{"empty", "f", "n", "v", "x"}));
  EXPECT_TRUE(g.has_attribute("x"));
  EXPECT_FALSE(g.has_attribute("y"));
}

TEST(H5, LinksAndExistence) {
  TempDir t;
  const auto f = h5::File::create((t / "links.h5").string());
  f.create_group("a");
  EXPECT_TRUE(f.exists("a"));
  EXPECT_FALSE(f.exists("b"));
  EXPECT_FALSE(f.external_link("a"));
  f.create_external_link("b", "other.h5", "/x");
  const auto link = f.external_link("b");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->first, "other.h5");
  EXPECT_EQ(link->second, "/x");
  f.remove("b");
  EXPECT_FALSE(f.exists("b"));
}

TEST(H5, ErrorsNameTheFileAndTheObject) {
  TempDir t;
  const auto path = (t / "err.h5").string();
  {
    const auto f = h5::File::create(path);
    f.create_group("g").write_dataset("d", {2}, std::vector<float>{1, 2});
  }
  const auto f = h5::File::open(path);
  expect_error<h5::ReadError>([&] { f.dataset("missing"); }, {"missing", path, "H5D"});
  expect_error<h5::ReadError>([&] { f.group("g").dataset("nope"); }, {"g/nope", path});
  expect_error<h5::ReadError>([&] { f.attribute("none"); }, {"@none", path});
  try {
    f.dataset("missing");
  } catch (const h5::Error& e) {
    EXPECT_EQ(e.file(), path);
    EXPECT_EQ(e.object(), "missing");
    EXPECT_FALSE(e.stack().empty());
  }
  const auto d = f.group("g").dataset("d");
  expect_error<h5::UsageError>([&] { d.select({0}, {2}).write(std::vector<float>{1}); },
                               {"1 values", "selection of 2", "g/d", path});
  expect_error<h5::UsageError>(
      [&] {
        d.select({0, 0}, {1, 1}).read<float>();
      },
      {"rank 2", "g/d", path});
  expect_error<h5::UsageError>([&] { d.read<std::string>(); }, {"does not hold strings", "g/d"});
  expect_error<h5::ReadError>([&] { d.select({1}, {5}).read<float>(); }, {"g/d", path});
  // Writing into a read-only file.
  expect_error<h5::WriteError>([&] { f.create_group("new"); }, {"new", path});
}

TEST(H5, FilesThatAreNotHdf5) {
  TempDir t;
  const auto text = (t / "text.h5").string();
  std::ofstream(text) << "not HDF5\n";
  EXPECT_FALSE(h5::File::is_hdf5(text));
  expect_error<h5::OpenError>([&] { h5::File::open(text); }, {text, "is not an HDF5 file"});
  // A file another process holds open for writing: HDF5's own reason comes along.
  const auto locked = (t / "locked.h5").string();
  {
    const auto writer = h5::File::create(locked);
    try {
      h5::File::open(locked);
    } catch (const h5::OpenError& e) {
      EXPECT_NE(std::string(e.what()).find(locked), std::string::npos) << e.what();
      EXPECT_FALSE(e.stack().empty()) << e.what();
    }
  }
  const auto missing = (t / "missing.h5").string();
  expect_error<h5::OpenError>([&] { h5::File::open(missing); }, {missing, "does not exist"});
  expect_error<h5::OpenError>([&] { h5::File::create((t / "no/such/dir.h5").string()); },
                              {"no/such/dir.h5", "create file"});
  const auto made = (t / "made.h5").string();
  h5::File::create(made);
  expect_error<h5::OpenError>([&] { h5::File::create(made, h5::Create::exclusive); },
                              {made, "create file"});
}

TEST(H5, HandlesAreMoveOnlyAndCloseOnce) {
  TempDir t;
  auto f = h5::File::create((t / "move.h5").string());
  auto g = f.create_group("g");
  const hid_t id = g.id();
  h5::Group moved = std::move(g);
  EXPECT_EQ(moved.id(), id);
  EXPECT_TRUE(H5Iis_valid(id) > 0);
  f.close();
  EXPECT_FALSE(f.id() >= 0);
  static_assert(!std::is_copy_constructible_v<h5::File>);
  static_assert(!std::is_copy_constructible_v<h5::Dataset>);
  static_assert(std::is_nothrow_destructible_v<h5::Handle>);
}
