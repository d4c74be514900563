// C layer over libjpeg-turbo, libpng and libwebp. Filled in by the image decoding work.
#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H
int cic_placeholder(void);
#endif
