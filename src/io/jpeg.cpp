// io/jpeg.h, after libjpeg-turbo's libjpeg.txt (error handling through setjmp/longjmp).
#include "io/jpeg.h"

#include <csetjmp>
#include <cstdio>

#include <jpeglib.h>

namespace medattn::io {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

[[noreturn]] void on_error(j_common_ptr info) { std::longjmp(reinterpret_cast<ErrorManager*>(info->err)->jump, 1); }
void on_message(j_common_ptr) {}  // warnings (corrupt but decodable data) are ignored, as OpenCV does

// Decodes into *out; false on any error. No C++ object lives in this frame across the jump.
bool decode_into(const unsigned char* data, size_t size, cv::Mat* out) {
  jpeg_decompress_struct info;
  ErrorManager errors;
  info.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = on_error;
  errors.pub.output_message = on_message;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, data, static_cast<unsigned long>(size));
  jpeg_read_header(&info, TRUE);
  if (info.num_components == 3 && (info.jpeg_color_space == JCS_YCbCr || info.jpeg_color_space == JCS_RGB)) {
    info.out_color_space = JCS_EXT_BGR;
  } else if (info.num_components == 1) {
    info.out_color_space = JCS_GRAYSCALE;
  } else {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_start_decompress(&info);
  out->create(static_cast<int>(info.output_height), static_cast<int>(info.output_width),
              info.output_components == 3 ? CV_8UC3 : CV_8UC1);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out->ptr<unsigned char>(static_cast<int>(info.output_scanline));
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
}

}  // namespace

cv::Mat decode_jpeg(const unsigned char* data, size_t size) {
  cv::Mat out;
  if (!decode_into(data, size, &out)) return cv::Mat();
  return out;
}

}  // namespace medattn::io
