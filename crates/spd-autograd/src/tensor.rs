//! `Tensor`: contiguous `f64` storage of shape `[batch, channels, rows, cols]`, each
//! `rows × cols` matrix column-major, matrices ordered batch-major then channel.

use faer::{MatMut, MatRef};
use serde::{Deserialize, Serialize};

use crate::error::{Result, shape_err};

/// A batch of multi-channel matrices; vectors are `1 × d` matrices and scalars `1 × 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    shape: [usize; 4],
    data: Vec<f64>,
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: [usize; 4]) -> Self {
        Self {
            shape,
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// A tensor from its shape and column-major matrix data.
    pub fn from_vec(shape: [usize; 4], data: Vec<f64>) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if data.len() != expected {
            return Err(shape_err(
                "tensor",
                format!(
                    "shape {shape:?} needs {expected} values, got {}",
                    data.len()
                ),
            ));
        }
        Ok(Self { shape, data })
    }

    /// A `[1, 1, 1, 1]` scalar.
    pub fn scalar(v: f64) -> Self {
        Self {
            shape: [1, 1, 1, 1],
            data: vec![v],
        }
    }

    /// `batch` copies (channels 1) of the `n × n` identity.
    pub fn identities(batch: usize, channels: usize, n: usize) -> Self {
        let mut t = Self::zeros([batch, channels, n, n]);
        for k in 0..batch * channels {
            for i in 0..n {
                t.data[k * n * n + i * n + i] = 1.0;
            }
        }
        t
    }

    /// A tensor with the matrices given, in batch-major order, with `channels` per sample.
    pub fn from_matrices(channels: usize, mats: &[MatRef<'_, f64>]) -> Result<Self> {
        let (r, c) = mats.first().map_or((0, 0), |m| (m.nrows(), m.ncols()));
        if channels == 0 || mats.len() % channels != 0 {
            return Err(shape_err(
                "tensor",
                "matrix count is not a multiple of channels",
            ));
        }
        let mut data = Vec::with_capacity(mats.len() * r * c);
        for m in mats {
            if (m.nrows(), m.ncols()) != (r, c) {
                return Err(shape_err("tensor", "matrices of different sizes"));
            }
            for j in 0..c {
                for i in 0..r {
                    data.push(m[(i, j)]);
                }
            }
        }
        Self::from_vec([mats.len() / channels, channels, r, c], data)
    }

    /// `[batch, channels, rows, cols]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.shape[0]
    }

    /// Channel count.
    pub fn channels(&self) -> usize {
        self.shape[1]
    }

    /// Rows of each matrix.
    pub fn rows(&self) -> usize {
        self.shape[2]
    }

    /// Columns of each matrix.
    pub fn cols(&self) -> usize {
        self.shape[3]
    }

    /// Number of matrices, `batch · channels`.
    pub fn count(&self) -> usize {
        self.shape[0] * self.shape[1]
    }

    /// Values per matrix, `rows · cols`.
    pub fn matrix_len(&self) -> usize {
        self.shape[2] * self.shape[3]
    }

    /// All values.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// All values, mutable.
    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }

    /// Consumes the tensor into its values.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Matrix `k` of the flat `batch · channels` list.
    pub fn mat(&self, k: usize) -> MatRef<'_, f64> {
        let len = self.matrix_len();
        MatRef::from_column_major_slice(
            &self.data[k * len..(k + 1) * len],
            self.rows(),
            self.cols(),
        )
    }

    /// Matrix `k`, mutable.
    pub fn mat_mut(&mut self, k: usize) -> MatMut<'_, f64> {
        let len = self.matrix_len();
        let (r, c) = (self.rows(), self.cols());
        MatMut::from_column_major_slice_mut(&mut self.data[k * len..(k + 1) * len], r, c)
    }

    /// Matrix of sample `b`, channel `c`.
    pub fn at(&self, b: usize, c: usize) -> MatRef<'_, f64> {
        self.mat(b * self.channels() + c)
    }

    /// Reinterprets the values with another shape of the same size.
    pub fn reshape(mut self, shape: [usize; 4]) -> Result<Self> {
        if shape.iter().product::<usize>() != self.data.len() {
            return Err(shape_err(
                "reshape",
                format!("{:?} → {shape:?}", self.shape),
            ));
        }
        self.shape = shape;
        Ok(self)
    }

    /// `self += other` (same shape).
    pub fn add_assign(&mut self, other: &Tensor) {
        debug_assert_eq!(self.shape, other.shape);
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += b;
        }
    }

    /// `self += s · other` (same shape).
    pub fn axpy(&mut self, s: f64, other: &Tensor) {
        debug_assert_eq!(self.shape, other.shape);
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += s * b;
        }
    }

    /// `s · self`.
    pub fn scaled(&self, s: f64) -> Tensor {
        Tensor {
            shape: self.shape,
            data: self.data.iter().map(|v| s * v).collect(),
        }
    }

    /// Frobenius inner product of two tensors of the same size.
    pub fn dot(&self, other: &Tensor) -> f64 {
        self.data.iter().zip(&other.data).map(|(a, b)| a * b).sum()
    }

    /// `‖self‖²`.
    pub fn norm_sq(&self) -> f64 {
        self.dot(self)
    }

    /// Whether every value is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}
