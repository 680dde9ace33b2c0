// The Comprehensive SR of one diagnosis (report/dicom_parts.h). What goes where (PS3.3):
//   Comprehensive SR IOD (A.35.3): the Patient and Study modules of the input; an SR Document
//   Series per study and run; VerificationFlag UNVERIFIED; the content tree below; the source
//   image and the SC listed in CurrentRequestedProcedureEvidenceSequence.
#include "report/dicom_parts.h"

#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmsr/codes/dcm.h>
#include <dcmtk/dcmsr/dsrdoc.h>
#include <dcmtk/dcmsr/dsrimgvl.h>
#include <dcmtk/dcmsr/dsrnumvl.h>

#include <cmath>
#include <cstdio>

#include "core/error.h"

namespace medattn::report::dicom {

void write_sr(const Derivation& x, const DiagnosisRecord& r, int& sr_count, const std::string& path) {
  DSRDocument doc(DSRTypes::DT_ComprehensiveSR);
  auto& tree = doc.getTree();
  auto check = [&](OFCondition c, const char* what) {
    if (c.bad()) throw file_error(ErrorKind::kCorruption, kWhat, x.source, std::string(what) + ": " + c.text());
  };
  const bool abstained = !r.abstained.empty();
  tree.addContentItem(DSRTypes::RT_isRoot, DSRTypes::VT_Container);
  check(tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue("18748-4", "LN", "Diagnostic imaging report")),
        "report title");
  auto text = [&](DSRTypes::E_AddMode mode, const DSRCodedEntryValue& concept, const std::string& value) {
    tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Text, mode);
    check(tree.getCurrentContentItem().setConceptName(concept), "concept name");
    check(tree.getCurrentContentItem().setStringValue(value.empty() ? "-" : value.c_str(), OFFalse), "text value");
  };
  auto number = [&](const DSRCodedEntryValue& concept, double value, int digits) {
    tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Num, DSRTypes::AM_afterCurrent);
    check(tree.getCurrentContentItem().setConceptName(concept), "concept name");
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.*f", digits, std::round(value * std::pow(10.0, digits)) / std::pow(10.0, digits));
    check(tree.getCurrentContentItem().setNumericValue(
              DSRNumericMeasurementValue(buf, DSRCodedEntryValue("1", "UCUM", "no units"))),
          "numeric value");
  };
  text(DSRTypes::AM_belowCurrent, CODE_DCM_AlgorithmName, x.options->model_name);
  text(DSRTypes::AM_afterCurrent, CODE_DCM_AlgorithmVersion, x.options->model_id + " weights SHA-256 " + x.options->weights_sha256);
  if (abstained) {
    text(DSRTypes::AM_afterCurrent, DSRCodedEntryValue("ABSTAINED", "99MEDATTN", "Abstention"), r.abstained);
  } else {
    text(DSRTypes::AM_afterCurrent, CODE_DCM_Finding, r.diagnosis);
  }
  for (size_t i = 0; i < r.probabilities.size(); ++i) {
    number(DSRCodedEntryValue("P" + std::to_string(i), "99MEDATTN",
                              clean_text("Probability of " + r.probabilities[i].first, 64).c_str()),
           r.probabilities[i].second, 6);
  }
  text(DSRTypes::AM_afterCurrent, DSRCodedEntryValue("METHOD", "99MEDATTN", "Heatmap method"), x.options->method);
  if (r.ood_score) number(DSRCodedEntryValue("OODSCORE", "99MEDATTN", "Out-of-distribution score"), *r.ood_score, 4);
  if (!r.warning.empty()) text(DSRTypes::AM_afterCurrent, DSRCodedEntryValue("WARNING", "99MEDATTN", "Warning"), r.warning);
  // The image diagnosed, and the overlay.
  {
    tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Image, DSRTypes::AM_afterCurrent);
    check(tree.getCurrentContentItem().setConceptName(CODE_DCM_SourceOfMeasurement), "concept name");
    DSRImageReferenceValue image(x.sop_class.c_str(), x.sop.c_str());
    if (x.frames > 1) image.getFrameList().addItem(static_cast<Sint32>(x.options->frame + 1));
    check(tree.getCurrentContentItem().setImageReference(image), "source image reference");
    tree.addContentItem(DSRTypes::RT_contains, DSRTypes::VT_Image, DSRTypes::AM_afterCurrent);
    check(tree.getCurrentContentItem().setConceptName(DSRCodedEntryValue("OVERLAY", "99MEDATTN", "Heatmap overlay")),
          "concept name");
    check(tree.getCurrentContentItem().setImageReference(
              DSRImageReferenceValue(UID_SecondaryCaptureImageStorage, x.sc_sop.c_str())),
          "overlay reference");
  }
  // The local codes' scheme, identified as PS3.3 C.12.1.1.2 asks for a private one.
  auto& schemes = doc.getCodingSchemeIdentification();
  if (schemes.addItem("99MEDATTN").good()) {
    schemes.setCodingSchemeName("medattn local codes");
    schemes.setCodingSchemeResponsibleOrganization("medattn");
  }
  auto& evidence = doc.getCurrentRequestedProcedureEvidence();
  evidence.addItem(x.study.c_str(), x.series.c_str(), x.sop_class.c_str(), x.sop.c_str());
  evidence.addItem(x.study.c_str(), x.sc_series.c_str(), UID_SecondaryCaptureImageStorage, x.sc_sop.c_str());
  doc.setManufacturer("medattn");
  doc.setManufacturerModelName(clean_text(x.options->model_name, 64).c_str());
  doc.setSoftwareVersions(clean_text(x.version, 64).c_str());
  doc.setSeriesDescription(clean_text("medattn findings (" + x.options->method + ") NOT FOR PRIMARY DIAGNOSIS", 64).c_str());
  doc.setSeriesNumber("9902");
  doc.setInstanceNumber(std::to_string(++sr_count).c_str());
  doc.setContentDate(x.date.c_str());
  doc.setContentTime(x.time.c_str());
  DcmFileFormat file;
  DcmDataset* d = file.getDataset();
  check(doc.write(*d), "SR document");
  // The identity: the input's patient and study, this run's series, the UIDs made above.
  copy_patient_study(x.in, d);
  put(d, DCM_SeriesInstanceUID, x.sr_series);
  put(d, DCM_SOPInstanceUID, x.sr_sop);
  put(d, DCM_InstanceCreationDate, x.date);
  put(d, DCM_InstanceCreationTime, x.time);
  put(d, DCM_VerificationFlag, "UNVERIFIED");
  add_contributing_equipment(d, x);
  save_atomic(file, path, x.source);
}

}  // namespace medattn::report::dicom
