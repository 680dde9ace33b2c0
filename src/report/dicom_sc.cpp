// The Secondary Capture of one diagnosis (report/dicom_parts.h), and the equipment it and the SR
// name. What goes where (PS3.3):
//   SC Image IOD (A.8.1): Patient, General Study and Patient Study modules copied from the input;
//   a new General Series (Modality OT) per study and run; SC Equipment (ConversionType WSD);
//   General Image with ImageType DERIVED\SECONDARY, DerivationDescription, SourceImageSequence
//   and BurnedInAnnotation YES; Image Pixel RGB 8-bit at the input's rows and columns; SOP Common
//   with ContributingEquipmentSequence naming the algorithm (IHE AI Results).
#include "report/dicom_parts.h"

#include <dcmtk/dcmdata/dcuid.h>

#include <opencv2/imgproc.hpp>

namespace medattn::report::dicom {

void add_contributing_equipment(DcmItem* d, const Derivation& x) {
  DcmItem* eq = nullptr;
  if (d->findOrCreateSequenceItem(DCM_ContributingEquipmentSequence, eq, -2).bad() || eq == nullptr) return;
  add_code(eq, DCM_PurposeOfReferenceCodeSequence, "109102", "DCM", "Processing Equipment");
  put(eq, DCM_Manufacturer, "medattn");
  put(eq, DCM_ManufacturerModelName, clean_text(x.options->model_name, 64));
  put(eq, DCM_SoftwareVersions, clean_text(x.version, 64) + "\\" + clean_text(x.options->model_id, 64));
  put(eq, DCM_ContributionDateTime, x.date + x.time);
  put(eq, DCM_ContributionDescription, clean_text(x.contribution, 1024));
}

void write_sc(const Derivation& x, const cv::Mat& overlay, int& sc_count, const std::string& path) {
  DcmFileFormat file;
  DcmDataset* d = file.getDataset();
  copy_patient_study(x.in, d);
  put(d, DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  put(d, DCM_SOPInstanceUID, x.sc_sop);
  put(d, DCM_InstanceCreationDate, x.date);
  put(d, DCM_InstanceCreationTime, x.time);
  // General Series
  put(d, DCM_Modality, "OT");
  put(d, DCM_SeriesInstanceUID, x.sc_series);
  put(d, DCM_SeriesNumber, "9901");
  put(d, DCM_SeriesDescription, clean_text("medattn heatmap (" + x.options->method + ") NOT FOR PRIMARY DIAGNOSIS", 64));
  // General Equipment, SC Equipment
  put(d, DCM_Manufacturer, "medattn");
  put(d, DCM_ConversionType, "WSD");
  put(d, DCM_SecondaryCaptureDeviceManufacturer, "medattn");
  put(d, DCM_SecondaryCaptureDeviceManufacturerModelName, clean_text(x.options->model_name, 64));
  put(d, DCM_SecondaryCaptureDeviceSoftwareVersions, clean_text(x.version, 64));
  // General Image, SC Image
  put(d, DCM_InstanceNumber, std::to_string(++sc_count));
  d->insertEmptyElement(DCM_PatientOrientation);
  // Type 2C (a paired body part): the input's, else empty (unknown).
  put(d, DCM_Laterality, get(x.in, DCM_Laterality));
  put(d, DCM_ContentDate, x.date);
  put(d, DCM_ContentTime, x.time);
  put(d, DCM_DateOfSecondaryCapture, x.date);
  put(d, DCM_TimeOfSecondaryCapture, x.time);
  put(d, DCM_ImageType, "DERIVED\\SECONDARY");
  put(d, DCM_DerivationDescription,
      clean_text("Attention heatmap (" + x.options->method + ") of model " + x.options->model_id +
                     " blended over the windowed input, with the diagnosis burned in; computed by " + x.version +
                     ". Not for primary diagnosis.",
                 1024));
  DcmItem* ref = nullptr;
  if (d->findOrCreateSequenceItem(DCM_SourceImageSequence, ref, -2).good() && ref != nullptr) {
    put(ref, DCM_ReferencedSOPClassUID, x.sop_class);
    put(ref, DCM_ReferencedSOPInstanceUID, x.sop);
    if (x.frames > 1) put(ref, DCM_ReferencedFrameNumber, std::to_string(x.options->frame + 1));
    add_code(ref, DCM_PurposeOfReferenceCodeSequence, "121322", "DCM", "Source image for image processing operation");
  }
  put(d, DCM_BurnedInAnnotation, "YES");
  // A lossy-compressed input makes every image derived from it lossy too (C.7.6.1.1.5).
  if (get(x.in, DCM_LossyImageCompression) == "01") {
    put(d, DCM_LossyImageCompression, "01");
    for (const auto& tag : {DCM_LossyImageCompressionRatio, DCM_LossyImageCompressionMethod}) {
      const std::string v = get(x.in, tag);
      if (!v.empty()) put(d, tag, v);
    }
  }
  add_contributing_equipment(d, x);
  // Image Pixel: RGB, 8 bits, interleaved.
  cv::Mat bgr = overlay;
  if (bgr.rows != x.rows || bgr.cols != x.cols) cv::resize(overlay, bgr, cv::Size(x.cols, x.rows), 0, 0, cv::INTER_AREA);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  if (!rgb.isContinuous()) rgb = rgb.clone();
  d->putAndInsertUint16(DCM_SamplesPerPixel, 3);
  put(d, DCM_PhotometricInterpretation, "RGB");
  d->putAndInsertUint16(DCM_PlanarConfiguration, 0);
  d->putAndInsertUint16(DCM_Rows, static_cast<Uint16>(x.rows));
  d->putAndInsertUint16(DCM_Columns, static_cast<Uint16>(x.cols));
  d->putAndInsertUint16(DCM_BitsAllocated, 8);
  d->putAndInsertUint16(DCM_BitsStored, 8);
  d->putAndInsertUint16(DCM_HighBit, 7);
  d->putAndInsertUint16(DCM_PixelRepresentation, 0);
  d->putAndInsertUint8Array(DCM_PixelData, rgb.ptr<Uint8>(0), static_cast<unsigned long>(rgb.total() * 3));
  save_atomic(file, path, x.source);
}

}  // namespace medattn::report::dicom
