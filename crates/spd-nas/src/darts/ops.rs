//! DARTS's candidate operations (`PRIMITIVES` and `OPS` of DARTS's `genotypes.py` and
//! `operations.py`) on the Euclidean image layers of spd-autograd.

use rand::Rng;
use serde::{Deserialize, Serialize};
use spd_autograd::euclid::{BatchNorm2d, DilConv, FactorizedReduce, Layer2d, OpSpec, SepConv};
use spd_autograd::layers::ForwardCtx;
use spd_autograd::ops::image_pool::{avg_pool2d, max_pool2d};
use spd_autograd::{Graph, ParamStore, Tensor, Var};

use crate::error::{NasError, Result};

/// A DARTS candidate, in DARTS's order (the α columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Primitive {
    /// Zero (with stride 2 the input is subsampled, then multiplied by 0).
    #[serde(rename = "none")]
    None,
    /// 3×3 max pooling, padding 1.
    #[serde(rename = "max_pool_3x3")]
    MaxPool3x3,
    /// 3×3 average pooling, padding 1, padding not counted.
    #[serde(rename = "avg_pool_3x3")]
    AvgPool3x3,
    /// Identity, or FactorizedReduce with stride 2.
    #[serde(rename = "skip_connect")]
    SkipConnect,
    /// Separable 3×3 convolution (applied twice).
    #[serde(rename = "sep_conv_3x3")]
    SepConv3x3,
    /// Separable 5×5 convolution (applied twice).
    #[serde(rename = "sep_conv_5x5")]
    SepConv5x5,
    /// Dilated (2) separable 3×3 convolution.
    #[serde(rename = "dil_conv_3x3")]
    DilConv3x3,
    /// Dilated (2) separable 5×5 convolution.
    #[serde(rename = "dil_conv_5x5")]
    DilConv5x5,
}

impl Primitive {
    /// All candidates, in α column order.
    pub const ALL: [Primitive; 8] = [
        Primitive::None,
        Primitive::MaxPool3x3,
        Primitive::AvgPool3x3,
        Primitive::SkipConnect,
        Primitive::SepConv3x3,
        Primitive::SepConv5x5,
        Primitive::DilConv3x3,
        Primitive::DilConv5x5,
    ];

    /// DARTS's name.
    pub fn name(self) -> &'static str {
        match self {
            Primitive::None => "none",
            Primitive::MaxPool3x3 => "max_pool_3x3",
            Primitive::AvgPool3x3 => "avg_pool_3x3",
            Primitive::SkipConnect => "skip_connect",
            Primitive::SepConv3x3 => "sep_conv_3x3",
            Primitive::SepConv5x5 => "sep_conv_5x5",
            Primitive::DilConv3x3 => "dil_conv_3x3",
            Primitive::DilConv5x5 => "dil_conv_5x5",
        }
    }

    /// The candidate of a DARTS name.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| NasError::Genotype(format!("unknown DARTS operation {name:?}")))
    }

    /// The α column of this candidate.
    pub fn column(self) -> usize {
        Self::ALL
            .iter()
            .position(|p| *p == self)
            .expect("every primitive is listed")
    }
}

/// A built candidate on `C → C` channels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DartsOp {
    /// Zeros of the (strided) output shape.
    Zero {
        /// 1 or 2.
        stride: usize,
    },
    /// 3×3 pooling (max or average) with padding 1, followed in the supernet by a batch norm
    /// without affine parameters (DARTS's `MixedOp`).
    Pool {
        /// Max (else average, padding not counted).
        max: bool,
        /// 1 or 2.
        stride: usize,
        /// The supernet's batch norm.
        bn: Option<BatchNorm2d>,
    },
    /// The identity.
    Identity,
    /// The stride-2 skip connection.
    Reduce(Box<FactorizedReduce>),
    /// `sep_conv_3x3` or `sep_conv_5x5`.
    Sep(Box<SepConv>),
    /// `dil_conv_3x3` or `dil_conv_5x5`.
    Dil(Box<DilConv>),
}

impl DartsOp {
    /// Builds `primitive` on `C` channels with `stride`; `affine` batch norms in the derived
    /// network (DARTS's evaluation model), not in the supernet (`supernet` also adds the batch
    /// norm after pooling). Parameters are registered under `name`.
    pub fn build<R: Rng + ?Sized>(
        primitive: Primitive,
        store: &mut ParamStore,
        name: &str,
        (c, stride): (usize, usize),
        supernet: bool,
        rng: &mut R,
    ) -> Result<Self> {
        let affine = !supernet;
        let spec = |kernel, padding| OpSpec {
            c_in: c,
            c_out: c,
            kernel,
            stride,
            padding,
            affine,
        };
        Ok(match primitive {
            Primitive::None => DartsOp::Zero { stride },
            Primitive::MaxPool3x3 | Primitive::AvgPool3x3 => DartsOp::Pool {
                max: primitive == Primitive::MaxPool3x3,
                stride,
                bn: if supernet {
                    Some(BatchNorm2d::new(store, &format!("{name}.bn"), c, false)?)
                } else {
                    None
                },
            },
            Primitive::SkipConnect if stride == 1 => DartsOp::Identity,
            Primitive::SkipConnect => DartsOp::Reduce(Box::new(FactorizedReduce::new(
                store,
                name,
                (c, c),
                affine,
                rng,
            )?)),
            Primitive::SepConv3x3 => {
                DartsOp::Sep(Box::new(SepConv::new(store, name, spec(3, 1), rng)?))
            }
            Primitive::SepConv5x5 => {
                DartsOp::Sep(Box::new(SepConv::new(store, name, spec(5, 2), rng)?))
            }
            Primitive::DilConv3x3 => {
                DartsOp::Dil(Box::new(DilConv::new(store, name, spec(3, 2), 2, rng)?))
            }
            Primitive::DilConv5x5 => {
                DartsOp::Dil(Box::new(DilConv::new(store, name, spec(5, 4), 2, rng)?))
            }
        })
    }

    /// The op on images `[B, C, H, W]`.
    pub fn forward(
        &self,
        g: &mut Graph,
        store: &ParamStore,
        ctx: &mut ForwardCtx,
        x: Var,
    ) -> Result<Var> {
        Ok(match self {
            DartsOp::Zero { stride } => {
                let [b, c, h, w] = g.value(x).shape();
                g.constant(Tensor::zeros([
                    b,
                    c,
                    h.div_ceil(*stride),
                    w.div_ceil(*stride),
                ]))
            }
            DartsOp::Pool { max, stride, bn } => {
                let y = if *max {
                    max_pool2d(g, x, 3, *stride, 1)?
                } else {
                    avg_pool2d(g, x, 3, *stride, 1)?
                };
                match bn {
                    Some(bn) => bn.forward(g, store, ctx, y)?,
                    None => y,
                }
            }
            DartsOp::Identity => x,
            DartsOp::Reduce(op) => op.forward(g, store, ctx, x)?,
            DartsOp::Sep(op) => op.forward(g, store, ctx, x)?,
            DartsOp::Dil(op) => op.forward(g, store, ctx, x)?,
        })
    }
}
